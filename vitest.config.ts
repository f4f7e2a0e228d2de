import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  plugins: [
    {
      // WGSL files are imported as text, as esbuild's `text` loader does for the built bundle.
      name: 'wgsl-as-text',
      transform(code, id) {
        if (id.endsWith('.wgsl')) return { code: `export default ${JSON.stringify(code)};`, map: null };
        return undefined;
      },
    },
  ],
  resolve: {
    alias: [
      { find: /^@lorafuse\/errors$/, replacement: src('errors') },
      { find: /^@lorafuse\/core\/testing$/, replacement: fileURLToPath(new URL('./packages/core/src/testing/index.ts', import.meta.url)) },
      { find: /^@lorafuse\/core$/, replacement: src('core') },
      { find: /^@lorafuse\/kernels\/testing$/, replacement: fileURLToPath(new URL('./packages/kernels/src/testing/index.ts', import.meta.url)) },
      { find: /^@lorafuse\/kernels$/, replacement: src('kernels') },
      { find: /^@lorafuse\/runner$/, replacement: src('runner') },
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'tools/lint/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Browser tests each start Chromium; two cores cannot run many at once.
    maxWorkers: 2,
  },
});
