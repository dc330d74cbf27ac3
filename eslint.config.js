// ESLint flat config. typescript-eslint's type-checked recommended rules over every TypeScript file
// that tsconfig.json compiles; eslint-config-prettier last, so that no rule argues with Prettier
// (formatting is Prettier's job alone: `npm run format`).
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'migrations/']),
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's test()/describe()/it() return promises that the runner itself awaits.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
      // `_name` marks a parameter or binding that is there for its position, not its value.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  {
    // Tests, benchmarks and scripts read JSON that the CLI, the daemon or a worker printed: `any` is
    // the honest type of JSON.parse, and the assertions (or the figures' checks) are what hold its
    // shape. The no-unsafe-* rules guard src/, where an untyped value would reach the database.
    files: ['test/**', 'bench/**', 'scripts/**'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      // Fakes implement async interfaces (requestPage, sleep, onRestart) with synchronous bodies.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Scripts the web view serves to the browser (src/web/, if any are plain JavaScript) run there.
    files: ['src/web/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
  {
    // Plain JavaScript is outside tsconfig.json (this file, browser scripts): no type information.
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  prettier,
  {
    // After eslint-config-prettier, which turns curly off: a body Prettier moved onto a line of its
    // own gets braces (`eslint --fix`, run by `npm run format`: scripts/format.ts), so no if/for/while
    // ever guards an unbraced line below it.
    rules: { curly: ['error', 'multi-line'] },
  },
);
