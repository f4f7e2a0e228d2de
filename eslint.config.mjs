/**
 * `npm run lint`: the module boundaries of the workspace, and nothing about style.
 *
 * - package boundaries: which package may depend on which, by the Nx tags in each package.json;
 * - no import cycles between files, type-only imports included;
 * - other packages are imported by name and `exports` subpath, never by a path into their folder or dist/;
 * - folder layers inside cli and core: no folder imports one above it (the `folderLayers` table).
 *
 * The parser only reads syntax (no type information), which keeps a run of the whole tree short.
 */
import path from 'node:path';
import nxPlugin from '@nx/eslint-plugin';
import tsParser from '@typescript-eslint/parser';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import { folderLayerZones } from './tools/lint/folder-layers.mjs';
import lorafuse from './tools/lint/plugin.mjs';

const root = import.meta.dirname;

/**
 * Which packages each package may depend on, by Nx tag (`nx.tags` in its package.json).
 * `scope:web` is the browser app to come: it may use the pure packages, never Node's.
 */
const packageLayers = {
  'scope:errors': [],
  'scope:kernels': ['scope:errors'],
  'scope:core': ['scope:kernels', 'scope:errors'],
  'scope:runner': ['scope:errors'],
  'scope:cli': ['scope:core', 'scope:kernels', 'scope:runner', 'scope:errors'],
  'scope:bench': ['scope:core', 'scope:kernels', 'scope:runner', 'scope:cli', 'scope:errors'],
  'scope:web': ['scope:core', 'scope:kernels', 'scope:errors'],
};

/**
 * Folder layers inside a package's src/, lowest last. Each key is a unit of that folder: a folder (all files
 * below it), a file, or `.` for the loose root files that are not keys of their own. Its value lists the units
 * it may import, `'*'` for anything; a unit may always import itself, and `<folder>/.` means the files
 * directly in that folder. A nested key is limited among its siblings; its parent's key still applies to it.
 * The key `*.test.ts` lists what test files may import on top of what their folder may.
 */
const folderLayers = {
  'packages/cli/src': {
    'main.ts': '*',
    'index.ts': '*',
    commands: '*',
    merge: ['proof', 'devices', 'fs', '.'],
    verify: ['forward', 'proof', 'devices', 'fs', '.'],
    forward: ['devices', 'fs', '.'],
    diff: ['proof', 'devices', 'fs', '.'],
    proof: ['devices', 'fs', '.'],
    devices: ['fs', '.'],
    'devices/cpu': ['devices/.'],
    'devices/dawn': ['devices/.'],
    'devices/chromium': ['devices/.'],
    fs: ['.'],
    '.': ['devices', 'fs'],
  },
  'packages/core/src': {
    '*.test.ts': ['testing'],
    'index.ts': '*',
    testing: '*',
    compare: ['load', 'compute', 'plan', 'peft', 'gpt2', 'safetensors', '.'],
    doctor: ['plan', 'peft', 'gpt2', 'safetensors', '.'],
    verify: ['load', 'compute', 'plan', 'peft', 'gpt2', 'safetensors', '.'],
    load: ['safetensors', 'gpt2', '.'],
    // The behavioural check must be able to catch a merge bug: it never reaches into the planner.
    forward: ['peft', 'gpt2', 'safetensors', '.'],
    compute: ['plan/types.ts', 'safetensors', 'gpt2', 'peft', '.'],
    plan: ['safetensors', 'gpt2', 'peft', '.'],
    peft: ['gpt2', 'safetensors', '.'],
    gpt2: ['.'],
    torch: ['safetensors', '.'],
    safetensors: ['.'],
    '.': ['safetensors'],
  },
};

const tsFiles = ['packages/*/src/**/*.ts', 'packages/*/test/**/*.ts'];

/** The boundary rule's options for a given constraint table. */
function moduleBoundaries(layers) {
  return [
    'error',
    {
      allow: [],
      depConstraints: Object.entries(layers).map(([sourceTag, tags]) => ({
        sourceTag,
        onlyDependOnLibsWithTags: tags,
      })),
    },
  ];
}

// The boundary rule reads the Nx project graph from its cache and silently skips itself when there is none
// (a fresh clone), so build or refresh the graph before any file is linted. A lint run is one short process:
// unless told otherwise, compute the graph in it rather than start a daemon that would outlive it.
process.env.NX_DAEMON ??= 'false';
const { createProjectGraphAsync } = await import('@nx/devkit');
await createProjectGraphAsync({ exitOnError: false });

export default [
  {
    ignores: ['**/dist/**', '**/node_modules/**', '**/*.bundle.js', '.nx/**', '**/*.{js,mjs,cjs}', 'tools/lint/fixtures/**'],
  },
  {
    files: tsFiles,
    languageOptions: { parser: tsParser, ecmaVersion: 'latest', sourceType: 'module' },
    plugins: { '@nx': nxPlugin, 'import-x': importX, lorafuse },
    settings: {
      'import-x/resolver-next': [
        createTypeScriptImportResolver({ project: path.join(root, 'packages/*/tsconfig.json'), noWarnOnMultipleProjects: true }),
      ],
    },
    rules: {
      '@nx/enforce-module-boundaries': moduleBoundaries(packageLayers),
      'lorafuse/no-import-cycles': 'error',
      'lorafuse/package-entry-imports': ['error', { root }],
      'import-x/no-restricted-paths': ['error', { basePath: root, zones: folderLayerZones(root, folderLayers) }],
    },
  },
  {
    // kernels' browser tests launch Chromium through the runner; kernels' sources may not.
    files: ['packages/kernels/test/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': moduleBoundaries({
        ...packageLayers,
        'scope:kernels': [...packageLayers['scope:kernels'], 'scope:runner'],
      }),
    },
  },
  {
    // The app's end-to-end test launches Chromium as the runner does; the app's sources may not use the runner.
    files: ['packages/web/test/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': moduleBoundaries({
        ...packageLayers,
        'scope:web': [...packageLayers['scope:web'], 'scope:runner'],
      }),
    },
  },
  {
    // Files the lint's own test checks the cycle rule on; `npm run lint` leaves them out (see ignores).
    files: ['tools/lint/fixtures/**/*.ts'],
    languageOptions: { parser: tsParser, ecmaVersion: 'latest', sourceType: 'module' },
    plugins: { lorafuse },
    rules: { 'lorafuse/no-import-cycles': 'error' },
  },
];
