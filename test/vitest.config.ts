import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['test/**/*.test.ts'],
    exclude: ['test/bench/**', 'node_modules/**'],
    // integration tests start real processes on loopback; 2-core machines are slow
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Most files wait on daemons, builds and gossip rather than compute, so
    // two files at once on two cores keeps both busy; vitest's default
    // (cores - 1) ran this suite one file at a time on a 2-core machine:
    // 1,850 s before, 1,171 s with two, every test passing.
    maxWorkers: Math.max(2, availableParallelism() - 1)
  }
})
