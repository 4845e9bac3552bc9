import type { Command } from '../cli.ts'
import { addCommand, bootstrapCommand, daemonCommand, getCommand, idCommand, initCommand, peersCommand } from './core.ts'
import { logsCommand } from './logs.ts'
import { policyCommand, trustCommand } from './policy.ts'
import { statusCommand, submitCommand } from './submit.ts'
import { verifyCommand } from './verify.ts'
import { devnetCommand } from './devnet.ts'
import { envCommand } from './env.ts'
import { gcCommand, storeCommand } from './store.ts'
import { uiCommand } from './ui.ts'

export const commands: Command[] = [
  devnetCommand,
  initCommand,
  idCommand,
  daemonCommand,
  bootstrapCommand,
  peersCommand,
  trustCommand,
  policyCommand,
  submitCommand,
  statusCommand,
  uiCommand,
  logsCommand,
  addCommand,
  getCommand,
  storeCommand,
  gcCommand,
  envCommand,
  verifyCommand
]
