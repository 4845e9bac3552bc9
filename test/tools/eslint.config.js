// The linter and formatter: ESLint with typescript-eslint and @stylistic set
// to JavaScript Standard Style (two spaces, single quotes, no semicolons, a
// space before a function's parentheses), the style js-libp2p and helia
// write in. `npm run lint` checks; `npm run lint -- --fix` formats. Kept
// here with the other checking tools (not at the top level): package.json
// passes it with --config, and ESLint then resolves every pattern from the
// repository root, where npm runs it.
// (neostandard would give the same style, but brings ~50 MB of React and
// polyfill plugins into every `npm ci`.)
import js from '@eslint/js'
import stylistic from '@stylistic/eslint-plugin'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['node_modules/**', 'bench-results/**', 'test/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  stylistic.configs.customize({ indent: 2, quotes: 'single', semi: false, jsx: false, braceStyle: '1tbs', commaDangle: 'never' }),
  {
    rules: {
      '@stylistic/space-before-function-paren': ['error', 'always'],
      '@stylistic/generator-star-spacing': ['error', { before: true, after: true }],
      '@stylistic/yield-star-spacing': ['error', { before: true, after: true }],
      // as standard: these are left to the writer (tables are aligned by hand,
      // short guards sit on one line, type literals are written either way)
      '@stylistic/operator-linebreak': 'off',
      '@stylistic/max-statements-per-line': 'off',
      '@stylistic/arrow-parens': 'off',
      '@stylistic/member-delimiter-style': 'off',
      '@stylistic/no-multi-spaces': 'off',
      '@stylistic/indent-binary-ops': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
      '@stylistic/quote-props': ['error', 'as-needed'],
      // `void promise` is how this code marks a promise it deliberately does
      // not await (its rejection is handled inside): allowed as a statement only
      'no-void': ['error', { allowAsStatement: true }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'prefer-const': 'error',
      'no-var': 'error',
      // `for await (const _ of …)` drains an iterator whose items are not needed
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^_$', argsIgnorePattern: '^_' }],
      // strict types are tsc's job (strict mode); these are reviewed by hand
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'off'
    }
  },
  {
    // the dashboard's script runs in a browser, as it is (no build step)
    files: ['node/ui/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: Object.fromEntries(['window', 'document', 'location', 'history', 'sessionStorage', 'fetch', 'Node', 'URL', 'CSS', 'TextDecoderStream', 'AbortController', 'setTimeout', 'clearTimeout', 'console'].map(n => [n, 'readonly']))
    },
    rules: {
      // page text comes from peers: it may only ever become text, never markup
      'no-restricted-properties': ['error',
        { property: 'innerHTML', message: 'peer text must not become markup: use textContent / h()' },
        { property: 'outerHTML', message: 'peer text must not become markup: use textContent / h()' },
        { property: 'insertAdjacentHTML', message: 'peer text must not become markup: use textContent / h()' }]
    }
  },
  {
    // tests reach into objects the way an attacker would
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' }
  }
)
