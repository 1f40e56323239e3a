import type { Command } from '../command.js';

export interface CommandEntry {
  readonly name: string;
  readonly load: () => Promise<Command>;
}

/**
 * Every subcommand, in the order `--help` lists them. A command's module is imported only when that
 * command runs, so the daemon (`run`) does not carry the export, backup or probe code and what they
 * import (the config validator among it). Each name is the `name` of the command it loads.
 */
export const commands: readonly CommandEntry[] = [
  { name: 'run', load: async () => (await import('./run.js')).runCommand },
  { name: 'discover', load: async () => (await import('./discover.js')).discoverCommand },
  { name: 'probe', load: async () => (await import('./probe.js')).probeCommand },
  { name: 'export', load: async () => (await import('./export.js')).exportCommand },
  { name: 'energy', load: async () => (await import('./energy.js')).energyCommand },
  { name: 'backup', load: async () => (await import('./backup.js')).backupCommand },
  { name: 'restore', load: async () => (await import('./backup.js')).restoreCommand },
  { name: 'status', load: async () => (await import('./status.js')).statusCommand },
  { name: 'ack', load: async () => (await import('./ack.js')).ackCommand },
  { name: 'check-config', load: async () => (await import('./check-config.js')).checkConfigCommand },
  { name: 'demo', load: async () => (await import('./demo.js')).demoCommand },
  { name: 'config-schema', load: async () => (await import('./check-config.js')).configSchemaCommand },
];
