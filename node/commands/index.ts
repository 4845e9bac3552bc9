import type { Command } from '../cli.ts'
import { addCommand, bootstrapCommand, daemonCommand, getCommand, idCommand, initCommand, peersCommand } from './core.ts'
import { logsCommand, policyCommand, statusCommand, submitCommand, trustCommand, verifyCommand } from './requester.ts'
import { devnetCommand } from './devnet.ts'

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
  logsCommand,
  addCommand,
  getCommand,
  verifyCommand
]
