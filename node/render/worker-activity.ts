/**
 * What a worker daemon shows in its own terminal: one line per step of each
 * job it takes (claimed, fetched, building, attested or not), and the input
 * fetches' progress on a line rewritten in place. Only on a terminal and
 * without --json (stdout then carries the ready document alone).
 */
import type { FeedEvent } from '../api/types.ts'
import { oneLine, short } from './request.ts'
import { fetchProgressLine } from './fetch-progress.ts'
import type { StatusLine } from './fetch-progress.ts'

/** the events this shows (the daemon's text log leaves them out where this runs) */
export const WORKER_ACTIVITY: ReadonlySet<FeedEvent['type']> = new Set<FeedEvent['type']>(['job:claimed', 'job:declined', 'build:progress', 'build:attested', 'build:abandoned', 'build:error'])

/** the line for one event, or none; `status` takes the fetches' progress */
export function workerActivity (status: StatusLine, print: (line: string) => void): (e: FeedEvent) => void {
  const job = (id: string): string => `job ${short(oneLine(id))}`
  const line = (text: string): void => {
    status.end()
    print(text)
  }
  return (e) => {
    switch (e.type) {
      case 'job:claimed': line(`${job(e.jobId)}: claimed`); break
      case 'job:declined': line(`${job(e.jobId)}: declined: ${oneLine(e.reason)}`); break
      case 'build:progress': {
        const p = e.progress
        if (p.stage === 'fetching') {
          const what = `${job(e.jobId)}: fetching ${p.what} ${short(oneLine(p.cid))}`
          if (p.progress == null) line(`${what} …`)
          else if (p.progress.done) status.end(`${what}: ${fetchProgressLine(p.progress)}`)
          else status.update(`${what}: ${fetchProgressLine(p.progress)}`)
        } else if (p.stage === 'environment') {
          line(`${job(e.jobId)}: environment ${short(oneLine(p.cid))} ${p.cached ? 'already here' : 'ready'}`)
        } else {
          line(`${job(e.jobId)}: ${p.stage}`)
        }
        break
      }
      case 'build:attested': {
        const r = e.result
        line(`${job(e.jobId)}: attested ${r.status === 'success' ? oneLine(r.artifact) : `failure (${oneLine(r.reason)})`}`)
        break
      }
      case 'build:abandoned': line(`${job(e.jobId)}: abandoned: ${oneLine(e.reason)}`); break
      case 'build:error': line(`${job(e.jobId)}: error: ${oneLine(e.message)}`); break
      default: break
    }
  }
}
