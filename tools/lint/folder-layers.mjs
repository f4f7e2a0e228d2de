/**
 * Turns a table of folder layers into zones for `import-x/no-restricted-paths`.
 *
 * The table maps a package's source folder (`packages/cli/src`) to its units and what each may import.
 * A unit is written relative to that folder:
 * - a folder (`fs`, `devices/cpu`): every file below it;
 * - a file (`main.ts`, `plan/types.ts`);
 * - `.` or `<folder>/.`: the loose files directly in the source folder or in `<folder>`, other than those that
 *   are units of their own (so `.` in cli means `args.ts`, `output.ts`, ... but not `main.ts`).
 * The value is the list of units the key may import, or `'*'` for anything. A unit may always import itself.
 * Everything else beside the key is forbidden to it: the other folders and files in the same parent folder.
 * A nested key (`devices/cpu`) is thereby limited among its siblings inside `devices/`, and the key of
 * `devices` still governs what all of `devices/` may import from outside it.
 *
 * The key `*.test.ts` is not a unit: it lists what test files anywhere in the source folder may import on top
 * of what their folder may (the shared test fixtures, say).
 */
import path from 'node:path';

const TESTS = '*.test.ts';

/** Makes a literal path safe inside a minimatch glob (character classes, since backslashes are separators). */
function literal(p) {
  return p.split(path.sep).join('/').replace(/[*?[\]{}()!@+]/g, (c) => `[${c}]`);
}

function isLoose(unit) {
  return unit === '.' || unit.endsWith('/.');
}

function isFile(unit) {
  return !isLoose(unit) && unit.endsWith('.ts');
}

function parentOf(unit) {
  if (unit === '.') return '.';
  if (unit.endsWith('/.')) return unit.slice(0, -2);
  return path.posix.dirname(unit);
}

function describe(unit) {
  if (unit === '.') return 'the root files';
  if (isLoose(unit)) return `the files directly in ${parentOf(unit)}/`;
  return isFile(unit) ? unit : `${unit}/`;
}

/** "fs/ may import, besides its own files, only the root files", in the words of the table. */
function mayImport(unit, allowed) {
  const own = isLoose(unit) ? 'each other' : isFile(unit) ? 'itself' : 'its own files';
  const subject = describe(unit);
  if (allowed.length === 0) return `${subject} may import nothing but ${own}`;
  return `${subject} may import, besides ${own}, only ${allowed.map(describe).join(', ')}`;
}

/**
 * The no-restricted-paths zones for `table` (see the module comment), with paths absolute under `root`.
 * @param {string} root the workspace root
 * @param {Record<string, Record<string, string[] | '*'>>} table source folder → unit → units it may import
 */
export function folderLayerZones(root, table) {
  const zones = [];
  for (const [srcDir, { [TESTS]: testsMayImport, ...units }] of Object.entries(table)) {
    const base = literal(path.resolve(root, srcDir));
    const at = (rel) => (rel === '.' ? base : `${base}/${literal(rel)}`);
    /** The names (without `.ts`) of the files in `folder` that are units of their own. */
    const fileUnitsIn = (folder) =>
      Object.keys(units)
        .filter((u) => isFile(u) && parentOf(u) === folder)
        .map((u) => literal(path.posix.basename(u, '.ts')));
    const looseGlob = (folder, notAlso = []) => {
      const not = [...fileUnitsIn(folder), ...notAlso];
      return `${at(folder)}/${not.length === 0 ? '*' : `!(${not.join('|')})`}.ts`;
    };
    const globOf = (unit) => {
      if (isLoose(unit)) return looseGlob(parentOf(unit));
      if (isFile(unit)) return `${at(parentOf(unit))}/@(${literal(path.posix.basename(unit))})`;
      return `${at(unit)}/**`;
    };
    /** The unit's files split into [sources, tests], when the table gives tests more to import. */
    const targetsOf = (unit) => {
      if (testsMayImport === undefined || isFile(unit)) return [globOf(unit), undefined];
      if (isLoose(unit)) return [looseGlob(parentOf(unit), ['*.test']), `${at(parentOf(unit))}/*.test.ts`];
      return [`${at(unit)}/**/!(*.test).ts`, `${at(unit)}/**/*.test.ts`];
    };
    for (const [unit, allowed] of Object.entries(units)) {
      if (allowed === '*') continue;
      const parent = parentOf(unit);
      const scope = parent === '.' ? srcDir : `${srcDir}/${parent}`;
      const from = [`${at(parent)}/*/**/*`, `${at(parent)}/*.ts`];
      const [sources, tests] = targetsOf(unit);
      const except = [unit, ...allowed].map(globOf);
      const may = `Inside ${scope}, ${mayImport(unit, allowed)}`;
      zones.push({ target: sources, from, except, message: `${may} (folderLayers in eslint.config.mjs).` });
      if (tests !== undefined) {
        zones.push({
          target: tests,
          from,
          except: [...except, ...testsMayImport.map(globOf)],
          message: `${may}; its tests also ${testsMayImport.map(describe).join(', ')} (folderLayers in eslint.config.mjs).`,
        });
      }
    }
  }
  return zones;
}
