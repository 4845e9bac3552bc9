/** Application cap on one gossip message, far below gossipsub's 4 MiB frame limit. */
export const MAX_MESSAGE_BYTES = 64 * 1024
