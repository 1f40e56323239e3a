import type { ParseArgsConfig } from 'node:util';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** What a subcommand receives: its parsed flags and positionals, and where to print. */
export interface CommandContext {
  readonly values: Readonly<Record<string, unknown>>;
  readonly positionals: readonly string[];
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Usage lines after `kasa-monitor NAME`, and a description of each flag. */
  readonly usage: string;
  readonly options: OptionSpec;
  readonly positionals?: { readonly min: number; readonly max: number };
  /** Resolves to the process exit code. */
  run(context: CommandContext): Promise<number>;
}

/** Reads a string flag that parseArgs has already typed as a string. */
export function stringFlag(context: CommandContext, name: string): string | undefined {
  const value = context.values[name];
  return typeof value === 'string' ? value : undefined;
}

export function boolFlag(context: CommandContext, name: string): boolean {
  return context.values[name] === true;
}

export function stringListFlag(context: CommandContext, name: string): string[] {
  const value = context.values[name];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
