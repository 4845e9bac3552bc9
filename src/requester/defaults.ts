import type { ResourceAsk } from '../../protocol/index.ts'

/** Fixed default so that the same sources and command give the same buildId. */
export const DEFAULT_SOURCE_DATE_EPOCH = '315532800' // 1980-01-01T00:00:00Z: the earliest date zip can store

export const DEFAULT_RESOURCES: ResourceAsk = {
  memoryBytes: 512 * 1024 * 1024,
  cpus: 1,
  diskBytes: 256 * 1024 * 1024,
  wallSeconds: 600,
  processes: 256
}

export const DEFAULT_REPLICAS = 3
export const DEFAULT_TTL_SECONDS = 3600

/** The platform a host-environment job asks for when none is given: this machine's. */
export function hostPlatform (): string {
  return `${process.platform}-${process.arch}`
}
