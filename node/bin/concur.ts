#!/usr/bin/env node
import module from 'node:module'

// libp2p 3 needs Promise.withResolvers (ES2024): Node >= 22. `npm ci` installs a
// pinned Node 24 (the `node` package) that npm scripts and npx put first on PATH.
if (typeof (Promise as unknown as { withResolvers?: unknown }).withResolvers !== 'function') {
  process.stderr.write(`concur needs Node.js >= 22 (this is ${process.version}); run it through npm (\`npx concur …\` or \`npm start\`), which uses the Node 24 runtime installed by \`npm ci\`\n`)
  process.exit(78)
}

// every CLI command loads (and strips the types of) ~1,000 modules before it
// does anything: Node's on-disk compile cache makes the second and later starts
// cheaper (see the README's benchmarks). Enabled before anything else loads.
module.enableCompileCache?.()
const { main } = await import('../cli.ts')
const { commands } = await import('../commands/index.ts')
const { installFastVerify } = await import('../../src/net/fast-verify.ts')

// every peer verifies every gossiped message: use OpenSSL for ed25519
installFastVerify()
process.exitCode = await main(process.argv.slice(2), commands)
