import { createLibp2p } from 'libp2p'
import type { Libp2pOptions } from 'libp2p'
import { withBitswap } from '@helia/bitswap'
import type { Helia } from '@helia/interface'
import type { Libp2p, ServiceMap } from '@libp2p/interface'
import type { Blockstore } from 'interface-blockstore'
import type { Datastore } from 'interface-datastore'

/**
 * helia's entry point (and @helia/libp2p's) import every default libp2p
 * transport, router and service at load time (WebRTC, WebSockets, the DHT,
 * AutoTLS, UPnP, mDNS, delegated routing, HTTP gateways): about 60 MB of RSS
 * in a daemon that uses none of them (measured: 163 → 102 MB for the modules
 * a peer needs). A concur peer needs only the Helia class (blockstore with
 * network fallback, pins) and the libp2p router, so those two modules are
 * loaded by file, next to the entry points that npm resolved.
 */
interface HeliaModule {
  Helia: new (init: { name: string, version: string, blockstore: Blockstore, datastore: Datastore }) => Helia & {
    addMixin: (m: { name: string, start?: (h: Helia) => Promise<void>, stop?: (h: Helia) => Promise<void> }) => void
    hasRouter: (name: string) => boolean
    addRouter: (router: unknown) => void
  }
}
interface RoutingModule { libp2pRouting: (libp2p: Libp2p) => unknown }

const heliaModule = await import(new URL('./helia.js', import.meta.resolve('helia')).href) as HeliaModule
const routingModule = await import(new URL('./routing.js', import.meta.resolve('@helia/libp2p')).href) as RoutingModule

export type HeliaWithLibp2p<S extends ServiceMap> = Helia & { libp2p: Libp2p<S> }

/** A helia node on a libp2p node we configure ourselves, with bitswap. Stopped: call start(). */
export async function createHeliaNode<S extends ServiceMap> (init: { blockstore: Blockstore, datastore: Datastore, libp2p: Libp2pOptions<S> }): Promise<HeliaWithLibp2p<S>> {
  const libp2p = await createLibp2p({ ...init.libp2p, datastore: init.datastore, start: false })
  const helia = new heliaModule.Helia({ name: 'concur', version: '1', blockstore: init.blockstore, datastore: init.datastore })
  Object.defineProperty(helia, 'libp2p', { value: libp2p, enumerable: true })
  helia.addMixin({
    name: 'libp2p',
    start: async (h) => {
      if (!helia.hasRouter('libp2p-router')) helia.addRouter(routingModule.libp2pRouting(libp2p as unknown as Libp2p))
      await libp2p.start()
      void h
    },
    stop: async () => { await libp2p.stop() }
  })
  // withBitswap is typed for @helia/libp2p's HeliaWithLibp2p; ours has the same shape
  // relayed (limited) connections too: a peer behind NAT may have no other,
  // and the relay bounds what it carries (src/net/peer.ts RELAY_DATA_LIMIT)
  withBitswap(helia as unknown as Parameters<typeof withBitswap>[0], { runOnLimitedConnections: true })
  return helia as unknown as HeliaWithLibp2p<S>
}
