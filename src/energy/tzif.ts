/**
 * Reads a TZif file (RFC 8536, the binary format of /usr/share/zoneinfo) of version 2 or later:
 * the 64-bit transition times, the local time type each one switches to, and the POSIX TZ footer
 * that extends the zone past its last transition. Written from the RFC; no tz code was copied.
 */

export interface TzifType {
  /** Local time minus UTC, in seconds. */
  readonly utoff: number;
  readonly isdst: boolean;
}

export interface TzifZone {
  /** UTC seconds of each transition, ascending. */
  readonly transitions: readonly number[];
  /** Index into `types` of the local time type from each transition on. */
  readonly typeIndex: readonly number[];
  readonly types: readonly TzifType[];
  /** The POSIX TZ string for instants after the last transition ('' when the file has none). */
  readonly footer: string;
}

const HEADER_BYTES = 44;

interface Counts {
  readonly isutcnt: number;
  readonly isstdcnt: number;
  readonly leapcnt: number;
  readonly timecnt: number;
  readonly typecnt: number;
  readonly charcnt: number;
}

function readHeader(view: DataView, at: number): { version: number; counts: Counts } {
  if (view.byteLength < at + HEADER_BYTES) throw new TzifError('truncated header');
  if (view.getUint32(at) !== 0x545a6966) throw new TzifError('not a TZif file'); // 'TZif'
  const version = view.getUint8(at + 4);
  const count = (i: number): number => view.getUint32(at + 20 + 4 * i);
  return {
    version: version === 0 ? 1 : version - 0x30, // '\0', '2', '3', '4'
    counts: {
      isutcnt: count(0),
      isstdcnt: count(1),
      leapcnt: count(2),
      timecnt: count(3),
      typecnt: count(4),
      charcnt: count(5),
    },
  };
}

function dataBytes(c: Counts, timeSize: number): number {
  return (
    c.timecnt * timeSize +
    c.timecnt +
    c.typecnt * 6 +
    c.charcnt +
    c.leapcnt * (timeSize + 4) +
    c.isstdcnt +
    c.isutcnt
  );
}

export class TzifError extends Error {
  constructor(reason: string) {
    super(`bad TZif data: ${reason}`);
    this.name = 'TzifError';
  }
}

/** Parses a version 2+ TZif file; throws TzifError for version 1, leap-second ("right/") files or bad data. */
export function parseTzif(bytes: Uint8Array): TzifZone {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const first = readHeader(view, 0);
  // Version 1 holds only 32-bit times (1901–2038) and no footer: too short for the years we reckon in.
  if (first.version < 2) throw new TzifError('version 1 has no 64-bit data');
  const second = HEADER_BYTES + dataBytes(first.counts, 4);
  const { counts } = readHeader(view, second);
  // Leap-second files ("right/…") count TAI-like seconds, not the POSIX seconds Date uses.
  if (counts.leapcnt > 0) throw new TzifError('leap-second data is not supported');
  if (counts.typecnt === 0) throw new TzifError('no local time types');
  const end = second + HEADER_BYTES + dataBytes(counts, 8);
  if (view.byteLength < end) throw new TzifError('truncated data');

  let at = second + HEADER_BYTES;
  const transitions: number[] = [];
  for (let i = 0; i < counts.timecnt; i++, at += 8) {
    // Exact for any realistic time: the high word is small, so the sum stays below 2^53.
    transitions.push(view.getInt32(at) * 2 ** 32 + view.getUint32(at + 4));
  }
  const typeIndex: number[] = [];
  for (let i = 0; i < counts.timecnt; i++, at += 1) {
    const index = view.getUint8(at);
    if (index >= counts.typecnt) throw new TzifError('transition names a missing type');
    typeIndex.push(index);
  }
  const types: TzifType[] = [];
  for (let i = 0; i < counts.typecnt; i++, at += 6) {
    types.push({ utoff: view.getInt32(at), isdst: view.getUint8(at + 4) !== 0 });
  }
  return { transitions, typeIndex, types, footer: readFooter(bytes, end) };
}

/** The footer is '\n' TZ-string '\n' right after the version 2 data. */
function readFooter(bytes: Uint8Array, at: number): string {
  if (bytes[at] !== 0x0a) return '';
  const close = bytes.indexOf(0x0a, at + 1);
  if (close < 0) return '';
  let footer = '';
  for (let i = at + 1; i < close; i++) footer += String.fromCharCode(bytes[i] ?? 0);
  return footer;
}
