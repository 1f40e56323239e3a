import type { Command } from '../command.js';
import { checkConfigCommand, configSchemaCommand } from './check-config.js';
import { demoCommand } from './demo.js';
import { discoverCommand } from './discover.js';
import { exportCommand } from './export.js';
import { runCommand } from './run.js';

/** Every subcommand, in the order `--help` lists them. */
export const commands: readonly Command[] = [
  runCommand,
  discoverCommand,
  exportCommand,
  checkConfigCommand,
  demoCommand,
  configSchemaCommand,
];
