/**
 * Keeps the last `cap` bytes of a stream: the end of a build log is where the
 * error is, and a build must not be able to fill the worker's memory with output.
 */
export class TailBuffer {
  private readonly cap: number
  private chunks: Buffer[] = []
  private size = 0
  /** true once any byte was dropped */
  truncated = false

  constructor (cap: number) {
    this.cap = cap
  }

  push (chunk: Buffer): void {
    if (this.cap <= 0) {
      this.truncated ||= chunk.length > 0
      return
    }
    if (chunk.length >= this.cap) {
      this.truncated ||= this.size > 0 || chunk.length > this.cap
      this.chunks = [chunk.subarray(chunk.length - this.cap)]
      this.size = this.cap
      return
    }
    this.chunks.push(chunk)
    this.size += chunk.length
    while (this.size > this.cap) {
      const first = this.chunks[0]
      if (first == null) break
      const excess = this.size - this.cap
      if (first.length <= excess) {
        this.chunks.shift()
        this.size -= first.length
      } else {
        this.chunks[0] = first.subarray(excess)
        this.size -= excess
      }
      this.truncated = true
    }
  }

  toBuffer (): Buffer {
    return Buffer.concat(this.chunks, this.size)
  }
}
