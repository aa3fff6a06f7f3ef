// ESLint (flat config): typescript-eslint with type information everywhere, and the Temporal
// rule set for workflow code: no Node built-ins or I/O modules, activities imported as types only,
// no floating promises.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', 'test-artifacts/**', 'deploy/local/bootstrap.js', 'eslint.config.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-control-regex': 'off',
    },
  },
  {
    // Workflow code is replayed: deterministic, no I/O, nothing from Node, activities as types only.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: nodeBuiltins.map((name) => ({ name, message: 'Workflow code may not use Node built-ins: do I/O in an activity.' })) }],
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../activities/*', '../activities', '../services/*', '../services/**'], allowTypeImports: true, message: 'Workflows import activities as types only (proxyActivities).' },
            { group: ['mongoose', 'express', 'pino', 'resend', 'twilio', '@googleapis/sheets', '@opentelemetry/sdk-node', '@temporalio/client', '@temporalio/worker', '@temporalio/activity', 'zod'], message: 'Not in workflow code: it does I/O or is not deterministic.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow.' }, { name: 'setInterval', message: 'Use a loop with sleep().' }, { name: 'fetch', message: 'No I/O in workflows.' }, { name: 'process', message: 'No environment in workflows.' }],
    },
  },
  {
    // Plain JavaScript (scripts that run without any install): linted without type information.
    files: ['**/*.mjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      parserOptions: { projectService: false, program: null, project: false },
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', fetch: 'readonly', URL: 'readonly' },
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-expressions': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
