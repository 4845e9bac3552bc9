import type { Command } from '../cli.ts'
import { addCommand, bootstrapCommand, daemonCommand, getCommand, idCommand, initCommand, peersCommand } from './core.ts'

export const commands: Command[] = [
  initCommand,
  idCommand,
  daemonCommand,
  bootstrapCommand,
  peersCommand,
  addCommand,
  getCommand
]
