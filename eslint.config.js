import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * The layers of ARCHITECTURE.md, enforced: each folder may import only from the folders below it
 * (lib/ ← model/ ← app/ ← charts/ ← loadtest/, scripts/), and nothing but a test imports test/.
 */
const LAYERS = {
  lib: ['model', 'app', 'charts', 'loadtest', 'scripts', 'test'],
  model: ['app', 'charts', 'loadtest', 'scripts', 'test'],
  app: ['charts', 'loadtest', 'scripts', 'test'],
  charts: ['loadtest', 'scripts', 'test'],
  loadtest: ['scripts', 'test'],
  scripts: ['loadtest', 'test'],
};

const importsAgainstTheArrows = (folder, forbidden) => ({
  files: [`${folder}/**/*.ts`],
  ignores: ['**/*.test.ts'],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            group: forbidden.map((other) => `**/${other}/**`),
            message: `${folder}/ may not import ${forbidden.join('/, ')}/: imports point one way (ARCHITECTURE.md, Layers).`,
          },
        ],
      },
    ],
  },
});

export default defineConfig(
  { ignores: ['node_modules/', 'build/', 'dist/', 'coverage/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  ...Object.entries(LAYERS).map(([folder, forbidden]) => importsAgainstTheArrows(folder, forbidden)),
  // A construct is a short composition: what grows goes into a construct or a function of its own.
  { files: ['charts/**/*.ts'], ignores: ['**/*.test.ts'], rules: { 'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }] } },
  // The page's script runs in the browser.
  { files: ['app/ui/**/*.js'], languageOptions: { globals: globals.browser } },
);
