import { readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Config } from '../../config/index.js';
import { backupDirectory } from '../../daemon-options.js';
import { createSilentLogger } from '../../log/logger.js';
import { presetSettings, Resilience } from '../../resilience/index.js';
import { type FileOps, fileOps } from '../../storage/file-ops.js';
import {
  backupDatabaseFile,
  type CopyProgress,
  manualBackupName,
  restoreDatabaseFile,
} from '../../storage/sqlite/index.js';
import { type Command, stringFlag } from '../command.js';
import { EXIT_OK, UsageError } from '../exit-codes.js';
import { existingDatabase, loadForCommand } from '../load-config.js';
import { firstMissingDirectory, handOver, handOverDirectory, ownerOf } from '../ownership.js';

/** File operations under the configured `file` retry preset. */
function files(config: Config): FileOps {
  return fileOps(
    new Resilience(presetSettings(config.retry), createSilentLogger()).policy('cli.file', 'file'),
  );
}

function mib(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MiB`;
}

/** A progress line rewritten in place on a terminal; silent otherwise. */
function progressPrinter(stream: NodeJS.WritableStream): { update(p: CopyProgress): void; done(): void } {
  const tty = (stream as { isTTY?: boolean }).isTTY === true;
  let shown = false;
  return {
    update(p) {
      if (!tty || p.totalPages === 0) return;
      const percent = Math.floor(((p.totalPages - p.remainingPages) / p.totalPages) * 100);
      const restarted = p.restarts > 0 ? `, restarted ${p.restarts}x by writes` : '';
      stream.write(
        `\rbackup: ${percent}% (${p.totalPages - p.remainingPages} of ${p.totalPages} pages${restarted})   `,
      );
      shown = true;
    },
    done() {
      if (shown) stream.write('\n');
    },
  };
}

export const backupCommand: Command = {
  name: 'backup',
  summary: 'take an online, checked copy of the database (safe while the daemon runs)',
  usage: `[-c FILE] [--to FILE]

Copies the database with SQLite's online backup API while the daemon keeps writing, checks the
copy (PRAGMA integrity_check), and writes it as one self-contained file. Progress is shown on a
terminal. Manual backups are never deleted by the scheduled ones' rotation (storage.backup).

  -c, --config FILE   finds the database (storage.sqlite.path) and the backup directory
      --to FILE       where the copy goes (must not exist); default:
                      <storage.backup.directory>/kasa-monitor-<UTC time>-manual.db
`,
  options: {
    config: { type: 'string', short: 'c' },
    to: { type: 'string' },
  },
  async run(context) {
    const loaded = loadForCommand(context);
    const { config } = loaded;
    const source = existingDatabase(loaded);
    const to = stringFlag(context, 'to');
    if (to === '') throw new UsageError('--to needs a file name');
    const dest = to === undefined ? join(backupDirectory(config), manualBackupName(Date.now())) : resolve(to);
    // Run as root, what this creates goes to the database's owner (the service user), so the
    // service's own scheduled backups can still write in the backup folder.
    const owner = ownerOf(source);
    const createdFrom = firstMissingDirectory(dirname(dest));
    const progress = progressPrinter(context.stderr);
    try {
      const result = await backupDatabaseFile({
        source,
        dest,
        files: files(config),
        onProgress: (p) => progress.update(p),
      });
      progress.done();
      // Only the service's own backup folder: a copy taken elsewhere with --to stays the caller's.
      if (to === undefined) {
        handOver(owner, { files: [result.path], dir: dirname(result.path), createdFrom });
        handOverDirectory(owner, dirname(result.path));
      }
      context.stdout.write(
        `backup written: ${result.path} (${mib(result.bytes)}, ${result.readings} readings of ${result.channels} channels; integrity_check ok; ${Math.round(result.elapsedMs)} ms)\n`,
      );
    } catch (error) {
      progress.done();
      throw error;
    }
    return EXIT_OK;
  },
};

export const restoreCommand: Command = {
  name: 'restore',
  summary: 'put a backup back in place of the database (the daemon must be stopped)',
  usage: `[-c FILE] FILE

Checks FILE (PRAGMA integrity_check, a kasa-monitor schema this version reads), refuses while
the database is open in another process (stop the daemon first: systemctl stop kasa-monitor),
then moves the current database aside as <database>.replaced-<UTC time> and puts FILE in place.

  -c, --config FILE   finds the database (storage.sqlite.path)
`,
  options: {
    config: { type: 'string', short: 'c' },
  },
  positionals: { min: 1, max: 1 },
  async run(context) {
    const file = context.positionals[0] as string;
    if (file.trim() === '') {
      throw new UsageError('restore needs the backup FILE to put back, got an empty argument');
    }
    const source = isAbsolute(file) ? file : resolve(file);
    if (isDirectory(source)) {
      const newest = newestBackup(source);
      throw new UsageError(
        `${source} is a directory; name one backup file in it${newest === undefined ? '' : `, such as ${newest}`}`,
      );
    }
    const loaded = loadForCommand(context);
    const { config } = loaded;
    const target = config.storage.sqlite.path;
    // Run as root, the restored database gets the owner and mode of the one it replaces (or of
    // the database's folder, the service's state directory), so the service can open it.
    const owner = ownerOf(target) ?? ownerOf(dirname(target));
    const result = await restoreDatabaseFile({
      source,
      target,
      files: files(config),
      nowMs: Date.now(),
    });
    handOver(owner, { files: [result.target, `${result.target}-wal`, `${result.target}-shm`] });
    context.stdout.write(
      `restored ${source} to ${result.target} (schema ${result.check.schemaVersion}, ${result.check.readings} readings of ${result.check.channels} channels; integrity_check ok)\n`,
    );
    if (result.replacedPath !== null)
      context.stdout.write(`the replaced database is kept at ${result.replacedPath}\n`);
    return EXIT_OK;
  },
};

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The newest `*.db` file in `dir` (for the hint when restore is given a folder). */
function newestBackup(dir: string): string | undefined {
  try {
    return readdirSync(dir)
      .filter((name) => name.endsWith('.db'))
      .map((name) => ({ path: join(dir, name), mtime: statSync(join(dir, name)).mtimeMs }))
      .sort((a, b) => b.mtime - a.mtime)[0]?.path;
  } catch {
    return undefined;
  }
}
