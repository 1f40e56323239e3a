import type { Command } from '../command.js';
import { ackCommand } from './ack.js';
import { backupCommand, restoreCommand } from './backup.js';
import { checkConfigCommand, configSchemaCommand } from './check-config.js';
import { demoCommand } from './demo.js';
import { discoverCommand } from './discover.js';
import { energyCommand } from './energy.js';
import { exportCommand } from './export.js';
import { probeCommand } from './probe.js';
import { runCommand } from './run.js';
import { statusCommand } from './status.js';

/** Every subcommand, in the order `--help` lists them. */
export const commands: readonly Command[] = [
  runCommand,
  discoverCommand,
  probeCommand,
  exportCommand,
  energyCommand,
  backupCommand,
  restoreCommand,
  statusCommand,
  ackCommand,
  checkConfigCommand,
  demoCommand,
  configSchemaCommand,
];
