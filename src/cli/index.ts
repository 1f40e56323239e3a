import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { closest } from '../shared/closest.js';
import type { Command, CommandContext } from './command.js';
import { commands } from './commands/index.js';
import { ConfigExit } from './config-output.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './exit-codes.js';

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
}

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** Lists every command with its summary: the one place that loads all command modules. */
async function mainHelp(): Promise<string> {
  const all = await Promise.all(commands.map((entry) => entry.load()));
  const width = Math.max(...all.map((c) => c.name.length));
  const lines = all.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'Usage: kasa-monitor <command> [options]',
    '',
    'Records what TP-Link Kasa smart plugs measure.',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `kasa-monitor <command> --help` for a command’s options.',
    'Exit codes: 0 success, 64 bad usage, 78 bad configuration, 1 anything else.',
    '',
  ].join('\n');
}

function commandHelp(command: Command): string {
  return `Usage: kasa-monitor ${command.name} ${command.usage.trimEnd()}\n`;
}

/** Parses argv (without node and script) and runs the chosen command; resolves to the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(await mainHelp());
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`${packageVersion()}\n`);
    return EXIT_OK;
  }
  const entry = commands.find((c) => c.name === name);
  if (entry === undefined) {
    const suggestion = closest(
      name,
      commands.map((c) => c.name),
    );
    io.stderr.write(
      `kasa-monitor: unknown command '${name}'${suggestion === undefined ? '' : ` (did you mean '${suggestion}'?)`}\n\n${await mainHelp()}`,
    );
    return EXIT_USAGE;
  }
  const command = await entry.load();
  try {
    const parsed = parseArgs({
      args: joinNegativeValues(rest, command),
      options: {
        ...command.options,
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
      allowPositionals: true,
      strict: true,
    });
    if ((parsed.values as Record<string, unknown>)['help'] === true) {
      io.stdout.write(commandHelp(command));
      return EXIT_OK;
    }
    if ((parsed.values as Record<string, unknown>)['version'] === true) {
      io.stdout.write(`${packageVersion()}\n`);
      return EXIT_OK;
    }
    const limits = command.positionals ?? { min: 0, max: 0 };
    if (parsed.positionals.length < limits.min || parsed.positionals.length > limits.max) {
      throw new UsageError(
        limits.max === 0
          ? `unexpected argument '${parsed.positionals[0] ?? ''}'`
          : `expected ${limits.min === limits.max ? limits.min : `${limits.min} to ${limits.max}`} argument(s)`,
      );
    }
    const context: CommandContext = {
      values: parsed.values as Record<string, unknown>,
      positionals: parsed.positionals,
      stdout: io.stdout,
      stderr: io.stderr,
      env: io.env,
    };
    return await command.run(context);
  } catch (error) {
    if (error instanceof ConfigExit) return error.exitCode;
    if (error instanceof UsageError || isParseArgsError(error)) {
      const message = unknownOptionMessage(error, command) ?? (error as Error).message;
      io.stderr.write(`kasa-monitor ${name}: ${message}\n\n${commandHelp(command)}`);
      return EXIT_USAGE;
    }
    io.stderr.write(`kasa-monitor ${name}: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_FAILURE;
  }
}

/**
 * parseArgs says "Unknown option '--form'. To specify a positional argument starting with a '-', ...":
 * name the nearest option instead (a typo is far more likely than a positional starting with '-').
 */
function unknownOptionMessage(error: unknown, command: Command): string | undefined {
  if ((error as { code?: unknown } | null)?.code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return undefined;
  const option = /Unknown option '([^']+)'/.exec((error as Error).message)?.[1];
  if (option === undefined) return undefined;
  const names = [...Object.keys(command.options), 'help', 'version'].map((o) => `--${o}`);
  const typed = option.split('=')[0] ?? option;
  // A short option (-x) is too short to guess from; a cut-off long one (--form) is a prefix.
  const suggestion = !typed.startsWith('--')
    ? undefined
    : (names.find((n) => n.startsWith(typed)) ?? closest(typed, names));
  return `unknown option '${option}'${suggestion === undefined ? '' : ` (did you mean '${suggestion}'?)`}`;
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

/**
 * parseArgs reads `--from -24h` as two options; relative times are negative numbers, so a value
 * that looks like one is joined to its option (`--from=-24h`) before parsing.
 */
function joinNegativeValues(args: readonly string[], command: Command): string[] {
  const takesValue = new Set<string>();
  for (const [name, spec] of Object.entries(command.options)) {
    if (spec.type !== 'string') continue;
    takesValue.add(`--${name}`);
    if (spec.short !== undefined) takesValue.add(`-${spec.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const next = args[i + 1];
    if (takesValue.has(arg) && next !== undefined && /^-\d/.test(next)) {
      out.push(arg.startsWith('--') ? `${arg}=${next}` : `${arg}${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}
