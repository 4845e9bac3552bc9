// The linter and formatter: neostandard (JavaScript Standard Style for
// ESLint 9, with typescript-eslint), as js-libp2p and helia use through
// aegir. `npm run lint` checks; `npm run lint -- --fix` formats.
import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['node_modules/**', 'bench-results/**', 'test/fixtures/**'] }),
  {
    rules: {
      // `void promise` is how this code marks a promise it deliberately does
      // not await (its rejection is handled inside): allowed as a statement only
      'no-void': ['error', { allowAsStatement: true }],
      // resolvePromise where `resolve` is node:path's
      'promise/param-names': ['error', { resolvePattern: '^_?resolve', rejectPattern: '^_?reject' }]
    }
  },
  {
    files: ['**/*.ts'],
    rules: {
      // `for await (const _ of …)` drains an iterator whose items are not needed
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^_$', argsIgnorePattern: '^_' }]
    }
  }
]
