/** `concur ui`: the address of the daemon's dashboard, with its credential. */
import { spawn } from 'node:child_process'
import { open, rename } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import { connectApi } from '../api/client.ts'
import { output, progress } from '../cli.ts'
import type { Command } from '../cli.ts'
import { homePaths, readApiToken, resolveHome } from '../home.ts'
import { dashboardUrl } from '../ui/files.ts'

/** a page that sends the browser on to `url` at once (and says where, for a browser that does not) */
function redirectPage (url: string): string {
  const attr = url.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')
  return `<!doctype html>\n<meta charset="utf-8">\n<meta name="referrer" content="no-referrer">\n<meta http-equiv="refresh" content="0;url=${attr}">\n<title>concur</title>\n<p>Opening the <a href="${attr}">concur dashboard</a>…</p>\n`
}

/** written whole (temp file, then rename), readable by this user only from its first byte */
async function writePrivate (path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.chmod(0o600)
    await fh.writeFile(text)
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
}

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
    '--open  start the desktop\'s browser on it (xdg-open, or $BROWSER), through <home>/ui-open.html',
    '        (0600): the token is never on a command line, which other local users can read'
  ].join('\n'),
  async run ({ values, global }) {
    const home = resolveHome(global.home)
    // the daemon must be running: the token file is rewritten at each start
    const client = await connectApi(home)
    const url = dashboardUrl(client.info.api, await readApiToken(home))
    output(global, { url, api: client.info.api, pid: client.info.pid }, () => url)
    if (values.open === true) {
      const opener = process.env.BROWSER ?? 'xdg-open'
      // Not the URL itself: a command line is readable by every local user
      // (/proc/PID/cmdline, `ps`), and the browser keeps it for its whole
      // session. The browser is given a file only the daemon's user can read
      // (0600, in the 0700 home, like api.token) that sends it on to the URL.
      const page = homePaths(home).uiOpen
      await writePrivate(page, redirectPage(url))
      // one argument, no shell: nothing in it is read as a command
      const child = spawn(opener, [pathToFileURL(page).href], { stdio: 'ignore', detached: true })
      child.on('error', (err: NodeJS.ErrnoException) => {
        progress(global, `could not start ${opener} (${err.code ?? err.message}): open the address above in a browser`)
      })
      child.unref()
    }
    return 0
  }
}
