/** `concur env create` and `concur env show`: build environments named by content. */
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { resolveHome } from '../home.ts'
import { connectApi } from '../api/client.ts'
import type { AddResponse } from '../api/types.ts'
import { output, progress } from '../cli.ts'
import type { Command, GlobalFlags } from '../cli.ts'
import { UsageError } from '../errors.ts'
import { DEFAULT_ENV_SOURCE_DATE_EPOCH, DEFAULT_MIRROR, VARIANTS, createEnvironment } from '../../src/env/create.ts'
import type { EnvView } from '../../src/env/show.ts'
import { toolchainOf } from '../../src/env/manifest.ts'
import type { InstalledPackage } from '../../src/env/manifest.ts'
import { oneLine } from '../render/request.ts'

/** where downloaded .deb files are kept between environments, unless told */
function defaultDebCache (): string {
  const base = process.env.XDG_CACHE_HOME != null && process.env.XDG_CACHE_HOME !== '' ? process.env.XDG_CACHE_HOME : join(homedir(), '.cache')
  return join(base, 'concur', 'debs')
}

function toolchainLines (t: InstalledPackage[]): string[] {
  return t.map(p => `  ${oneLine(p.package).padEnd(10)} ${oneLine(p.version)}`)
}

function describeEnv (v: EnvView): string {
  const m = v.manifest
  return [
    `environment ${v.cid}`,
    `suite       ${oneLine(m.suite)} (${oneLine(m.variant)}, ${oneLine(m.architecture)})`,
    `asked for   ${m.include.length > 0 ? m.include.map(oneLine).join(', ') : '(the variant only)'}`,
    `packages    ${m.installed.length} installed (exact versions: --json)`,
    `made with   SOURCE_DATE_EPOCH=${m.sourceDateEpoch}`,
    ...(v.toolchain.length > 0 ? ['toolchain:', ...toolchainLines(v.toolchain)] : [])
  ].join('\n')
}

async function create (values: Record<string, unknown>, global: GlobalFlags): Promise<number> {
  const suite = values.suite as string | undefined
  const out = values.output as string | undefined
  if (suite == null || out == null) throw new UsageError('usage: concur env create --suite SUITE -o DIR [--variant buildd] [--packages a,b] [--add]')
  const epoch = values['source-date-epoch'] != null ? Number(values['source-date-epoch']) : DEFAULT_ENV_SOURCE_DATE_EPOCH
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new UsageError('--source-date-epoch takes a whole number of seconds')
  const include = typeof values.packages === 'string' ? values.packages.split(',').map(p => p.trim()).filter(p => p !== '') : []
  const started = Date.now()
  const created = await createEnvironment({
    suite,
    out: resolve(out),
    include,
    sourceDateEpoch: epoch,
    ...(typeof values.variant === 'string' ? { variant: values.variant } : {}),
    ...(typeof values.mirror === 'string' ? { mirror: values.mirror } : {}),
    ...(typeof values.architecture === 'string' ? { architecture: values.architecture } : {}),
    ...(values['no-deb-cache'] === true ? {} : { debCache: typeof values['deb-cache'] === 'string' ? values['deb-cache'] : defaultDebCache() }),
    onProgress: (p) => {
      // mmdebstrap's own lines, its information, warnings and errors (not the package tools' chatter)
      if (p.stage === 'mmdebstrap') {
        if (/^[IWE]: /.test(p.line)) progress(global, `  ${p.line}`)
      } else if (p.stage === 'normalizing') {
        progress(global, 'normalizing: /dev emptied, the host\'s hostname and resolv.conf replaced')
      } else {
        progress(global, `manifest: ${p.packages} packages with their versions in etc/concur-environment.json`)
      }
    }
  })
  const seconds = Math.round((Date.now() - started) / 100) / 10
  let added: AddResponse | undefined
  if (values.add === true) {
    progress(global, `adding ${created.dir} to the store…`)
    const api = await connectApi(resolveHome(global.home))
    added = await api.post<AddResponse>('/v1/content/add', { path: created.dir, skipSpecial: true })
  }
  const result = { dir: created.dir, ...(added != null ? { cid: added.cid, bytes: added.bytes, files: added.files } : {}), seconds, manifest: created.manifest, toolchain: toolchainOf(created.manifest) }
  output(global, result, () => [
    `environment in ${created.dir} (${created.manifest.installed.length} packages, ${seconds} s)`,
    ...(added != null ? [`cid ${added.cid} (${added.files} files, ${added.bytes} bytes): name it with \`concur submit --env ${added.cid}\``] : [`add it with \`concur add ${created.dir}\` (or create with --add)`]),
    ...(result.toolchain.length > 0 ? ['toolchain:', ...toolchainLines(result.toolchain)] : [])
  ].join('\n'))
  return 0
}

async function show (cid: string | undefined, values: Record<string, unknown>, global: GlobalFlags): Promise<number> {
  if (cid == null) throw new UsageError('usage: concur env show CID')
  const timeoutS = values.timeout != null ? Number(values.timeout) : 60
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError('--timeout takes seconds')
  const api = await connectApi(resolveHome(global.home))
  const v = await api.get<EnvView>(`/v1/environments/${encodeURIComponent(cid)}?timeoutMs=${Math.round(timeoutS * 1000)}`)
  output(global, v, () => describeEnv(v))
  return 0
}

export const envCommand: Command = {
  name: 'env',
  summary: 'build environments by CID: env create (Debian packages, with mmdebstrap), env show CID',
  usage: 'concur env create --suite SUITE -o DIR [--variant buildd] [--packages a,b,…] [--add] | env show CID [--timeout S] [--home DIR] [--json]',
  notes: [
    'env create: a Debian root filesystem made with mmdebstrap (as root, or unprivileged with user namespaces),',
    'made so that the same package versions give the same tree and CID on any machine (fixed SOURCE_DATE_EPOCH,',
    '/dev emptied, the host\'s hostname and resolv.conf replaced), with etc/concur-environment.json recording',
    'the suite, the variant, the packages asked for and every installed package\'s exact version.',
    `  --variant V             one of ${VARIANTS.join(', ')} [buildd]`,
    '  --packages a,b          packages beyond the variant\'s own (e.g. texinfo,ed,nodejs)',
    `  --mirror URL            [${DEFAULT_MIRROR}]`,
    '  --architecture A        [this machine\'s]',
    `  --source-date-epoch N   [${DEFAULT_ENV_SOURCE_DATE_EPOCH}]`,
    '  --deb-cache DIR         downloaded .deb files kept here between runs [$XDG_CACHE_HOME/concur/debs]',
    '  --no-deb-cache          download every time',
    '  --add                   add the tree to this node\'s store (its daemon) and print the CID',
    'env show CID: the manifest of an environment, fetched by path (not the whole tree): suite, packages, toolchain'
  ].join('\n'),
  options: {
    suite: { type: 'string' },
    variant: { type: 'string' },
    packages: { type: 'string' },
    output: { type: 'string', short: 'o' },
    mirror: { type: 'string' },
    architecture: { type: 'string' },
    'source-date-epoch': { type: 'string' },
    'deb-cache': { type: 'string' },
    'no-deb-cache': { type: 'boolean', default: false },
    add: { type: 'boolean', default: false },
    timeout: { type: 'string' }
  },
  positionals: true,
  async run ({ positionals, values, global }) {
    const [verb, cid] = positionals
    if (verb === 'create') return await create(values, global)
    if (verb === 'show') return await show(cid, values, global)
    throw new UsageError(`concur env ${verb ?? ''}: use \`concur env create\` or \`concur env show CID\``)
  }
}
