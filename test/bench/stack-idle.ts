/**
 * The baseline for idle RSS: bare Node with the stack's modules loaded
 * (libp2p and its transports, gossipsub, helia, bitswap, the stores and the
 * UnixFS importer/exporter), no node started, doing nothing.
 */
await import('libp2p')
await import('@libp2p/tcp')
await import('@libp2p/noise')
await import('@libp2p/yamux')
await import('@libp2p/gossipsub')
await import('@libp2p/identify')
await import('helia')
await import('@helia/bitswap')
await import('blockstore-fs')
await import('datastore-level')
await import('ipfs-unixfs-importer')
await import('ipfs-unixfs-exporter')
setInterval(() => {}, 1000)
