/**
 * `lorafuse/package-entry-imports`: another workspace package is imported by its name and one of the
 * subpaths its package.json `exports`, never by a path into its folder.
 *
 * A path such as `@lorafuse/cli/dist/x.js`, `../../cli/src/x.js` or `../../../packages/core/src/x.js` depends on
 * where a file happens to sit (or on a stale build), bypasses the package's public surface, and hides the
 * dependency from the package graph the boundary rule checks.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { moduleReferences } from './module-graph.mjs';

/** The workspace packages under `<root>/packages`, each with its folder and the import specifiers it exports. */
export function workspacePackages(root) {
  const dir = path.join(root, 'packages');
  const packages = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    let manifest;
    try {
      manifest = JSON.parse(readFileSync(path.join(dir, entry.name, 'package.json'), 'utf8'));
    } catch {
      continue;
    }
    if (typeof manifest.name !== 'string') continue;
    const exportKeys =
      manifest.exports === undefined
        ? ['.']
        : typeof manifest.exports === 'string' || !Object.keys(manifest.exports).some((k) => k.startsWith('.'))
          ? ['.']
          : Object.keys(manifest.exports);
    const entryPoints = exportKeys.map((k) => (k === '.' ? manifest.name : `${manifest.name}/${k.slice(2)}`));
    packages.push({ name: manifest.name, folder: path.join(dir, entry.name), entryPoints });
  }
  return packages;
}

function isEntryPoint(pkg, specifier) {
  return pkg.entryPoints.some((entry) => {
    if (!entry.includes('*')) return entry === specifier;
    const [before, after] = entry.split('*');
    return specifier.startsWith(before) && specifier.endsWith(after) && specifier.length >= before.length + after.length;
  });
}

function packageContaining(packages, file) {
  return packages.find((p) => file === p.folder || file.startsWith(p.folder + path.sep));
}

const packagesByRoot = new Map();

/** @type {import('eslint').Rule.RuleModule} */
export const packageEntryImports = {
  meta: {
    type: 'problem',
    docs: { description: 'Import workspace packages by name and exports subpath, never by a path into their folder.' },
    schema: [
      {
        type: 'object',
        properties: { root: { type: 'string', description: 'the workspace root, whose packages/ holds the packages' } },
        required: ['root'],
        additionalProperties: false,
      },
    ],
    messages: {
      deepImport: '"{{specifier}}" reaches into the files of {{name}}: import one of its entry points ({{entries}}).',
      relativeImport:
        '"{{specifier}}" reaches into the folder of {{name}} by a relative path: import one of its entry points ({{entries}}).',
    },
  },
  create(context) {
    const { root } = context.options[0];
    let packages = packagesByRoot.get(root);
    if (packages === undefined) {
      packages = workspacePackages(root);
      packagesByRoot.set(root, packages);
    }
    const file = path.resolve(context.physicalFilename);
    const own = packageContaining(packages, file);
    const sourceCode = context.sourceCode;
    const report = (ref, messageId, pkg) =>
      context.report({
        loc: { start: sourceCode.getLocFromIndex(ref.start), end: sourceCode.getLocFromIndex(ref.end) },
        messageId,
        data: { specifier: ref.specifier, name: pkg.name, entries: pkg.entryPoints.join(', ') },
      });
    return {
      'Program:exit'() {
        for (const ref of moduleReferences(sourceCode.text)) {
          const { specifier } = ref;
          if (specifier.startsWith('.') || path.isAbsolute(specifier)) {
            const target = packageContaining(packages, path.resolve(path.dirname(file), specifier));
            if (target !== undefined && target !== own) report(ref, 'relativeImport', target);
            continue;
          }
          const pkg = packages.find((p) => specifier === p.name || specifier.startsWith(p.name + '/'));
          if (pkg !== undefined && !isEntryPoint(pkg, specifier)) report(ref, 'deepImport', pkg);
        }
      },
    };
  },
};
