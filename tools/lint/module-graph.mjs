/**
 * The file-level import graph of the workspace's TypeScript sources, as TypeScript itself resolves it.
 *
 * Every module reference counts: `import`, `import type`, `export ... from`, dynamic `import()`,
 * `typeof import()` and `import x = require()`. A type-only edge still ties two files' vocabularies together,
 * so it is part of the graph. Specifiers resolve with `moduleResolution: NodeNext` in ESM mode, which is how the
 * packages are compiled: `./x.js` names `./x.ts`. Only the workspace's own source files are nodes; packages
 * resolved through node_modules (including the workspace packages, which resolve to their built `dist/`) and
 * files TypeScript cannot resolve (`.wgsl` text imports) are left out.
 */
import { statSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** A module reference in a file: the specifier as written and where its text starts and ends. */
export function moduleReferences(text) {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => ({ specifier: f.fileName, start: f.pos, end: f.end }));
}

const compilerOptions = {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  allowJs: false,
};
const resolutionCache = ts.createModuleResolutionCache(process.cwd(), (f) => f, compilerOptions);

/** The source file a specifier in `fromFile` names, or undefined when it is not one of the workspace's sources. */
export function resolveSource(specifier, fromFile) {
  const { resolvedModule } = ts.resolveModuleName(
    specifier,
    fromFile,
    compilerOptions,
    ts.sys,
    resolutionCache,
    undefined,
    ts.ModuleKind.ESNext,
  );
  if (resolvedModule === undefined || resolvedModule.isExternalLibraryImport) return undefined;
  const file = resolvedModule.resolvedFileName;
  if (file.endsWith('.d.ts') || file.split(path.sep).includes('node_modules')) return undefined;
  return path.resolve(file);
}

/** How long a file's cached edges are trusted before its mtime is checked again (editors keep one process). */
const RECHECK_MS = 2_000;
const edgesByFile = new Map();

/** The workspace source files `file` (on disk) references, each with the specifier that names it. Cached by mtime. */
export function edgesOnDisk(file) {
  const now = Date.now();
  let entry = edgesByFile.get(file);
  if (entry !== undefined && now - entry.checkedAt < RECHECK_MS) return entry.edges;
  let mtimeMs;
  try {
    mtimeMs = statSync(file).mtimeMs;
  } catch {
    edgesByFile.set(file, { checkedAt: now, mtimeMs: -1, edges: [] });
    return [];
  }
  if (entry !== undefined && entry.mtimeMs === mtimeMs) {
    entry.checkedAt = now;
    return entry.edges;
  }
  const edges = resolvedEdges(readFileSync(file, 'utf8'), file);
  edgesByFile.set(file, { checkedAt: now, mtimeMs, edges });
  return edges;
}

/** The workspace source files a file's text references, each with its specifier and position. */
export function resolvedEdges(text, file) {
  const edges = [];
  for (const ref of moduleReferences(text)) {
    const target = resolveSource(ref.specifier, file);
    if (target !== undefined && target !== file) edges.push({ ...ref, target });
  }
  return edges;
}

/**
 * The shortest chain of files from `start` back to `goal` along on-disk edges, as a list of files beginning
 * with `start` and ending with `goal`; undefined when `start` cannot reach `goal`.
 */
export function pathBack(start, goal) {
  const cameFrom = new Map([[start, undefined]]);
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const file = queue[i];
    for (const { target } of edgesOnDisk(file)) {
      if (cameFrom.has(target)) continue;
      cameFrom.set(target, file);
      if (target === goal) {
        const chain = [goal];
        for (let at = file; at !== undefined; at = cameFrom.get(at)) chain.unshift(at);
        return chain;
      }
      queue.push(target);
    }
  }
  return undefined;
}
