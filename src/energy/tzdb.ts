/**
 * The system's time zone database (TZif files under /usr/share/zoneinfo, or $TZDIR): which zone this
 * machine runs in, which names are zones, and each zone's offsets. Reading the files ourselves keeps
 * ICU's zone data (+8 MiB RSS once Intl is given a time zone) out of the daemon.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseTzif, type TzifZone } from './tzif.js';
import { IntlOffsets, intlKnowsZone } from './zone-intl.js';
import { TzifOffsets, UTC_OFFSETS, type ZoneOffsets } from './zone-offsets.js';

export function zoneinfoDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env['TZDIR'];
  return dir !== undefined && dir !== '' ? dir : '/usr/share/zoneinfo';
}

/** Names every system has, with or without a zoneinfo directory. */
const BUILT_IN_UTC = new Set(['UTC', 'Etc/UTC']);

/** IANA names are made of these; anything else (`..`, a leading `/`) never reaches the file system. */
const SAFE_NAME = /^[A-Za-z0-9_+-]+(?:\/[A-Za-z0-9_+-]+)*$/;

/** The zone `name`'s TZif data, or null when the name is unsafe or no readable, valid file exists. */
export function readZoneFile(name: string, dir = zoneinfoDir()): TzifZone | null {
  if (!SAFE_NAME.test(name)) return null;
  try {
    return parseTzif(readFileSync(`${dir}/${name}`));
  } catch {
    return null;
  }
}

const offsetsByZone = new Map<string, ZoneOffsets>();

/** Parsed offsets for `zone`, cached; null for an unknown zone. */
export function zoneOffsets(zone: string): ZoneOffsets | null {
  const cached = offsetsByZone.get(zone);
  if (cached !== undefined) return cached;
  const offsets = loadOffsets(zone);
  if (offsets !== null) offsetsByZone.set(zone, offsets);
  return offsets;
}

function loadOffsets(zone: string): ZoneOffsets | null {
  if (BUILT_IN_UTC.has(zone)) return UTC_OFFSETS;
  const file = readZoneFile(zone);
  if (file !== null) return new TzifOffsets(file);
  // No zoneinfo file (a slim container without tzdata, or a name only Intl spells): Intl still knows
  // its zones, at the cost of ICU's zone data in memory. Better that than refusing a valid zone.
  return intlKnowsZone(zone) ? new IntlOffsets(zone) : null;
}

/** True when `zone` names a time zone: UTC, a TZif file under the zoneinfo dir, else one Intl knows. */
export function isValidTimeZone(zone: string): boolean {
  if (zone.trim() === '') return false;
  return zoneOffsets(zone) !== null;
}

export interface SystemZoneSources {
  readonly env?: NodeJS.ProcessEnv;
  readonly localtime?: string;
  readonly timezoneFile?: string;
}

/**
 * The IANA zone this machine runs in: $TZ (':Europe/Berlin' or 'Europe/Berlin'), else the zone
 * /etc/localtime links to, else /etc/timezone, else UTC. Like the C library, a set but unknown $TZ
 * means UTC rather than a fall-through to /etc/localtime.
 */
export function systemTimeZone(sources: SystemZoneSources = {}): string {
  const zone = findSystemZone(sources);
  return UTC_NAMES.has(zone) ? 'UTC' : zone;
}

/** Names of UTC the system may use; reported as 'UTC', as Intl did before this module replaced it. */
const UTC_NAMES = new Set([
  'Etc/UTC',
  'Etc/UCT',
  'Etc/Universal',
  'Etc/Zulu',
  'UCT',
  'Universal',
  'Zulu',
  'Etc/GMT',
  'Etc/GMT0',
  'Etc/GMT+0',
  'Etc/GMT-0',
  'Etc/Greenwich',
  'GMT',
  'GMT0',
  'GMT+0',
  'GMT-0',
  'Greenwich',
]);

function findSystemZone(sources: SystemZoneSources): string {
  const env = sources.env ?? process.env;
  const dir = zoneinfoDir(env);
  const tz = env['TZ'];
  if (tz !== undefined) {
    let name = tz.startsWith(':') ? tz.slice(1) : tz;
    if (name.startsWith(`${dir}/`)) name = name.slice(dir.length + 1);
    return name !== '' && isValidTimeZone(name) ? name : 'UTC';
  }
  const linked = linkedZone(sources.localtime ?? '/etc/localtime', dir);
  if (linked !== null && isValidTimeZone(linked)) return linked;
  const named = firstLine(sources.timezoneFile ?? '/etc/timezone');
  if (named !== null && isValidTimeZone(named)) return named;
  return 'UTC';
}

/** 'Europe/Berlin' from /etc/localtime -> /usr/share/zoneinfo/Europe/Berlin (or …/posix/Europe/Berlin). */
function linkedZone(localtime: string, dir: string): string | null {
  let target: string;
  try {
    target = resolve(dirname(localtime), readlinkSync(localtime));
  } catch {
    return null; // not a symbolic link (a copied file says nothing about its name), or absent
  }
  const marker = target.startsWith(`${dir}/`) ? `${dir}/` : '/zoneinfo/';
  const at = target.indexOf(marker);
  if (at < 0) return null;
  const name = target.slice(at + marker.length);
  return name.startsWith('posix/') ? name.slice('posix/'.length) : name;
}

function firstLine(path: string): string | null {
  try {
    const line = readFileSync(path, 'utf8').split('\n')[0]?.trim() ?? '';
    return line === '' ? null : line;
  } catch {
    return null;
  }
}
