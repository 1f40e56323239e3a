import { configJsonSchemaText } from '../../config/index.js';
import type { Command } from '../command.js';
import { EXIT_OK } from '../exit-codes.js';
import { loadForCommand } from '../load-config.js';

export const checkConfigCommand: Command = {
  name: 'check-config',
  summary: 'validate a config file and print every problem with its key path',
  usage: `[-c FILE]

Loads FILE (or KASA_MONITOR_CONFIG, or /etc/kasa-monitor/config.yaml), applies the environment and
prints every problem with its key path and what is allowed. Exit 0 when valid, 78 when not.

  -c, --config FILE   the config file to check
`,
  options: { config: { type: 'string', short: 'c' } },
  async run(context) {
    const { source } = loadForCommand(context);
    context.stdout.write(`ok: ${source ?? 'no config file; defaults and environment'} is valid\n`);
    return EXIT_OK;
  },
};

export const configSchemaCommand: Command = {
  name: 'config-schema',
  summary: 'print the JSON Schema of the config file (for editors)',
  usage: `

Prints the JSON Schema of config.yaml, the same as config/kasa-monitor.schema.json.
`,
  options: {},
  async run(context) {
    context.stdout.write(configJsonSchemaText());
    return EXIT_OK;
  },
};
