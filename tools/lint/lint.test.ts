// `npm run lint` with the repo's own eslint.config.mjs: each boundary rule fires on a deliberate violation,
// and a file that keeps to the boundaries lints clean.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint, type Linter } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

let eslint: ESLint;

beforeAll(() => {
  // `ignore: false` lets the test lint the fixtures that `npm run lint` leaves out; nothing else is linted here.
  eslint = new ESLint({ cwd: root, ignore: false });
});

/** The messages ESLint gives `code` as if it were the file at `file` (relative to the repo root). */
async function lint(file: string, code: string): Promise<Linter.LintMessage[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return result!.messages;
}

function ruleIds(messages: Linter.LintMessage[]): (string | null)[] {
  return messages.map((m) => m.ruleId);
}

/** A source file (not a test) of a package folder, as the `.js` specifier NodeNext code writes for it. */
function someModuleIn(folder: string): string {
  const name = readdirSync(path.join(root, folder)).find((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'));
  if (name === undefined) throw new Error(`no .ts file in ${folder} to import`);
  return name.replace(/\.ts$/, '.js');
}

describe('npm run lint', () => {
  it('reports a kernels source file that imports core (package boundaries)', async () => {
    // core depends on kernels, so the rule names the circle between the two packages.
    const messages = await lint('packages/kernels/src/lint-probe.ts', "import { InputError } from '@lorafuse/core';\nexport { InputError };\n");
    expect(ruleIds(messages)).toContain('@nx/enforce-module-boundaries');
    expect(messages.find((m) => m.ruleId === '@nx/enforce-module-boundaries')?.message).toMatch(/@lorafuse\/kernels.*@lorafuse\/core/);
  });

  it('reports a core source file that imports the runner (the Nx tags in package.json)', async () => {
    const messages = await lint('packages/core/src/lint-probe.ts', "import type { BrowserRunner } from '@lorafuse/runner';\nexport type { BrowserRunner };\n");
    expect(ruleIds(messages)).toEqual(['@nx/enforce-module-boundaries']);
    expect(messages[0]!.message).toBe('A project tagged with "scope:core" can only depend on libs tagged with "scope:kernels", "scope:errors"');
  });

  it('lets kernels tests, and only them, import the runner', async () => {
    const code = "import type { BrowserRunner } from '@lorafuse/runner';\nexport type { BrowserRunner };\n";
    expect(ruleIds(await lint('packages/kernels/src/lint-probe.ts', code))).toContain('@nx/enforce-module-boundaries');
    expect(await lint('packages/kernels/test/lint-probe.ts', code)).toEqual([]);
  });

  it('reports an import of another package through its dist/ folder', async () => {
    const messages = await lint('packages/bench/src/lint-probe.ts', "import { main } from '@lorafuse/cli/dist/main.js';\nexport { main };\n");
    expect(ruleIds(messages)).toContain('lorafuse/package-entry-imports');
    const dynamic = await lint('packages/bench/src/lint-probe.ts', "export const cli = await import('@lorafuse/cli/dist/main.js');\n");
    expect(ruleIds(dynamic)).toContain('lorafuse/package-entry-imports');
  });

  it('reports a relative import that reaches into another package', async () => {
    const sibling = await lint('packages/cli/src/lint-probe.ts', "import { InputError } from '../../core/src/errors.js';\nexport { InputError };\n");
    expect(ruleIds(sibling)).toContain('lorafuse/package-entry-imports');
    const viaPackages = await lint('packages/bench/src/lint-probe.ts', "export type * from '../../../packages/core/src/errors.js';\n");
    expect(ruleIds(viaPackages)).toContain('lorafuse/package-entry-imports');
  });

  it('reports a cli fs/ file that imports commands/ (folder layers)', async () => {
    const target = someModuleIn('packages/cli/src/commands');
    const messages = await lint('packages/cli/src/fs/lint-probe.ts', `import type * as command from '../commands/${target}';\nexport type { command };\n`);
    expect(ruleIds(messages)).toContain('import-x/no-restricted-paths');
    expect(messages.find((m) => m.ruleId === 'import-x/no-restricted-paths')?.message).toContain('Inside packages/cli/src, fs/ may import, besides its own files, only the root files');
  });

  it('reports a core load/ file that imports plan/ (folder layers)', async () => {
    const target = someModuleIn('packages/core/src/plan');
    const messages = await lint('packages/core/src/load/lint-probe.ts', `export * from '../plan/${target}';\n`);
    expect(ruleIds(messages)).toContain('import-x/no-restricted-paths');
    expect(messages.find((m) => m.ruleId === 'import-x/no-restricted-paths')?.message).toContain('Inside packages/core/src, load/ may import, besides its own files, only safetensors/, gpt2/, the root files (');
  });

  it("lets core's tests, and only them, import the testing/ fixtures", async () => {
    const code = "import type * as testing from '../testing/index.js';\nexport type { testing };\n";
    expect(ruleIds(await lint('packages/core/src/load/lint-probe.ts', code))).toEqual(['import-x/no-restricted-paths']);
    expect(await lint('packages/core/src/load/lint-probe.test.ts', code)).toEqual([]);
  });

  it('reports a two-file import cycle closed by a type-only import', async () => {
    const results = await eslint.lintFiles(['tools/lint/fixtures/cycle/plan.ts', 'tools/lint/fixtures/cycle/tie.ts']);
    expect(results).toHaveLength(2);
    for (const result of results) {
      expect(ruleIds(result.messages), path.basename(result.filePath)).toEqual(['lorafuse/no-import-cycles']);
      expect(result.messages[0]!.message).toMatch(/plan\.ts → .*tie\.ts → .*plan\.ts|tie\.ts → .*plan\.ts → .*tie\.ts/);
    }
  });

  it('passes a file that keeps to every boundary', async () => {
    const dtype = someModuleIn('packages/core/src/safetensors');
    const code = [
      `import type * as dtype from '../safetensors/${dtype}';`,
      "import type { LoraMergeShape } from '@lorafuse/kernels';",
      'export type Probe = [typeof dtype, LoraMergeShape];',
      '',
    ].join('\n');
    expect(await lint('packages/core/src/plan/lint-probe.ts', code)).toEqual([]);
  });
});
