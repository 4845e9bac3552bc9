import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['test/**/*.test.ts'],
    exclude: ['test/bench/**', 'node_modules/**'],
    // integration tests start real processes on loopback; 2-core machines are slow
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks'
  }
})
