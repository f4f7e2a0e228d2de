/**
 * `lorafuse/no-import-cycles`: no file may reach itself through its imports.
 *
 * Unlike `import-x/no-cycle`, type-only imports are followed: a cycle through types still means two files
 * cannot be understood (or moved) one without the other. The linted file's own references come from its
 * current text; the rest of the graph is read from disk.
 */
import path from 'node:path';
import { pathBack, resolvedEdges } from './module-graph.mjs';

/** @type {import('eslint').Rule.RuleModule} */
export const noImportCycles = {
  meta: {
    type: 'problem',
    docs: { description: 'Forbid import cycles between files, type-only imports included.' },
    schema: [],
    messages: { cycle: 'Import cycle: {{chain}}. Move what both sides need into a file that imports neither.' },
  },
  create(context) {
    const file = path.resolve(context.physicalFilename);
    const sourceCode = context.sourceCode;
    return {
      'Program:exit'() {
        for (const edge of resolvedEdges(sourceCode.text, file)) {
          const back = pathBack(edge.target, file);
          if (back === undefined) continue;
          const chain = [file, ...back].map((f) => path.relative(context.cwd, f)).join(' → ');
          context.report({
            loc: { start: sourceCode.getLocFromIndex(edge.start), end: sourceCode.getLocFromIndex(edge.end) },
            messageId: 'cycle',
            data: { chain },
          });
        }
      },
    };
  },
};
