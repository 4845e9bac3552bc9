/** `concur ui`: the address of the daemon's dashboard, with its credential. */
import { spawn } from 'node:child_process'
import { connectApi } from '../api/client.ts'
import { output, progress } from '../cli.ts'
import type { Command } from '../cli.ts'
import { readApiToken, resolveHome } from '../home.ts'
import { dashboardUrl } from '../ui/files.ts'

export const uiCommand: Command = {
  name: 'ui',
  summary: 'print (or --open) the address of the daemon\'s dashboard in a browser',
  usage: 'concur ui [--open] [--home DIR] [--json]',
  options: {
    open: { type: 'boolean', default: false }
  },
  notes: [
    'The address carries the daemon\'s API token after the #: anyone who has it can use the',
    'daemon as you (submit jobs, read files through it). Do not paste it where others see it.',
    'The browser keeps the token in that tab only and removes it from the address bar. A new',
    'token is made each time the daemon starts: run `concur ui` again after a restart.',
    '--open  start the desktop\'s browser on it (xdg-open, or $BROWSER)'
  ].join('\n'),
  async run ({ values, global }) {
    const home = resolveHome(global.home)
    // the daemon must be running: the token file is rewritten at each start
    const client = await connectApi(home)
    const url = dashboardUrl(client.info.api, await readApiToken(home))
    output(global, { url, api: client.info.api, pid: client.info.pid }, () => url)
    if (values.open === true) {
      const opener = process.env.BROWSER ?? 'xdg-open'
      // the URL as one argument, no shell: nothing in it is read as a command
      const child = spawn(opener, [url], { stdio: 'ignore', detached: true })
      child.on('error', (err: NodeJS.ErrnoException) => {
        progress(global, `could not start ${opener} (${err.code ?? err.message}): open the address above in a browser`)
      })
      child.unref()
    }
    return 0
  }
}
