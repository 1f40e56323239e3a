/** Damage to database files, as a failing disk or a bad copy leaves it, written in place. */
import { closeSync, openSync, writeSync } from 'node:fs';

/** Writes `bytes` over the file at byte `offset`, keeping everything else. */
export function overwriteBytes(path: string, bytes: Buffer, offset: number): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

/**
 * Overwrites ten 4 KiB pages from page 20 on with garbage: the header still reads, the data does
 * not (the file must be larger than 20 pages for the damage to reach any data).
 */
export function corruptPages(path: string): void {
  overwriteBytes(path, Buffer.alloc(4096 * 10, 0xa5), 4096 * 20);
}
