import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';

/** Options of {@link bundlePage}. */
export interface BundlePageOptions {
  /**
   * Bare import specifiers mapped to files, e.g. `{ '@lorafuse/kernels': '/repo/packages/kernels/src/index.ts' }`
   * to bundle a package from source rather than from its built `dist`. `@lorafuse/runner/page` is always
   * mapped to this runner's own page entry unless given here.
   */
  alias?: Record<string, string>;
  /** Source maps: `'inline'` (default: page stack traces point at the sources) or `false`. */
  sourcemap?: 'inline' | false;
  /** Minify the bundle (default false). */
  minify?: boolean;
}

/**
 * The runner's own page entry: `src/page/index.ts` when running from source, `dist/page/index.js`
 * when built; `undefined` when neither is beside this module (e.g. when the runner was bundled into
 * another program), in which case `@lorafuse/runner/page` resolves through `node_modules`.
 */
export function runnerPageEntry(): string | undefined {
  for (const candidate of ['./page/index.ts', './page/index.js']) {
    const path = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(path)) return path;
  }
  return undefined;
}

function aliasPlugin(alias: Record<string, string>): Plugin {
  return {
    name: 'lorafuse-alias',
    setup(b) {
      b.onResolve({ filter: /^@lorafuse\// }, (args) => {
        const target = alias[args.path];
        return target === undefined ? undefined : { path: target };
      });
    },
  };
}

/**
 * Bundles a page entry (which calls `startPage` and `registerPageApi` of `@lorafuse/runner/page`)
 * into one browser ES module at `outFile`, the way the CLI, the benchmarks and the kernel tests all do it:
 * esbuild, format esm, platform browser, `.wgsl` files imported as text.
 *
 * @returns `outFile`.
 */
export async function bundlePage(entryPath: string, outFile: string, options: BundlePageOptions = {}): Promise<string> {
  const alias: Record<string, string> = { ...options.alias };
  if (alias['@lorafuse/runner/page'] === undefined) {
    const own = runnerPageEntry();
    if (own !== undefined) alias['@lorafuse/runner/page'] = own;
  }
  // Loaded here, not at the top: every `lorafuse` run imports this package, and only builds and
  // tests bundle pages (esbuild's import is ~60 ms of each CLI start).
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [entryPath],
    outfile: outFile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    loader: { '.wgsl': 'text' },
    sourcemap: options.sourcemap ?? 'inline',
    minify: options.minify ?? false,
    plugins: [aliasPlugin(alias)],
    logLevel: 'silent',
  });
  if (result.errors.length > 0) throw new Error(`bundlePage(${entryPath}) failed: ${result.errors.map((e) => e.text).join('; ')}`);
  return outFile;
}
