/**
 * The workspace's own ESLint rules, as a plugin named `lorafuse` in eslint.config.mjs.
 */
import { noImportCycles } from './no-import-cycles.mjs';
import { packageEntryImports } from './package-entry-imports.mjs';

export default {
  meta: { name: 'lorafuse' },
  rules: {
    'no-import-cycles': noImportCycles,
    'package-entry-imports': packageEntryImports,
  },
};
