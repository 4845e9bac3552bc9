/** `concur logs`: the tails of a job's build logs. */
import { resolveHome } from '../home.ts'
import { connectApi } from '../api/client.ts'
import type { LogsView } from '../api/types.ts'
import { output } from '../cli.ts'
import type { Command } from '../cli.ts'
import { UsageError } from '../errors.ts'
import { parseBytes } from '../worker-options.ts'
import { describeLog } from '../render/request.ts'

export const logsCommand: Command = {
  name: 'logs',
  summary: 'print the tails of a job\'s build logs: trusted workers\' by default, others with --worker DID or --all',
  usage: 'concur logs JOB [--worker DID]… [--all] [--bytes N (default 256K, at most 4M)] [--home DIR] [--json]',
  options: {
    // any key can attest with a log of many MiB: untrusted ones are read only when asked for
    worker: { type: 'string', multiple: true },
    all: { type: 'boolean', default: false },
    bytes: { type: 'string' }
  },
  positionals: true,
  async run ({ positionals, values, global }) {
    const [jobId] = positionals
    if (jobId == null) throw new UsageError('concur logs needs a job id')
    const api = await connectApi(resolveHome(global.home))
    const q = new URLSearchParams()
    for (const w of (values.worker as string[] | undefined) ?? []) q.append('worker', w)
    if (values.all === true) q.set('all', '1')
    if (values.bytes != null) q.set('bytes', String(parseBytes(values.bytes as string, 'bytes')))
    const query = q.size > 0 ? `?${q.toString()}` : ''
    const r = await api.get<LogsView>(`/v1/requests/${jobId}/logs${query}`)
    output(global, r, () => r.logs.map(describeLog).join('\n'))
    return 0
  }
}
