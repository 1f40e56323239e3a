/** One thing wrong with the configuration. */
export interface ConfigProblem {
  /** The key path as in the YAML file ('polling.timeout'), the environment variable that set it, or the file. */
  readonly path: string;
  /** What is wrong and what is allowed. */
  readonly message: string;
  /** 1-based position in the configuration file, when the problem is in it. */
  readonly line?: number;
  readonly column?: number;
}

/** `path (line L, column C): message`, one problem per line, as check-config prints them. */
export function formatProblem(problem: ConfigProblem): string {
  const where =
    problem.line === undefined
      ? ''
      : ` (line ${problem.line}${problem.column === undefined ? '' : `, column ${problem.column}`})`;
  return `${problem.path}${where}: ${problem.message}`;
}

/** A configuration that cannot be used. The CLI exits with `exitCode` (78, EX_CONFIG). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly exitCode = 78;

  constructor(
    readonly problems: readonly ConfigProblem[],
    /** The configuration file involved, if any. */
    readonly source: string | null = null,
  ) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    const header = `invalid configuration${source === null ? '' : ` in ${source}`} (${count}):`;
    super([header, ...problems.map((problem) => `  - ${formatProblem(problem)}`)].join('\n'));
  }
}
