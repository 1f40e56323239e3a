import type * as z from 'zod';
import { createConfigSchema, keyRegistry, type Reload } from './schema.js';

export { closest } from '../shared/closest.js';
export { valueAt } from './key-tags.js';

/** How a string from the environment or a command-line flag becomes a value for a key. */
export type KeyKind = 'boolean' | 'number' | 'string' | 'duration' | 'list' | 'map';

/** One leaf key of the configuration, derived from the schema. */
export interface ConfigKey {
  /** Dotted key path as in the YAML file, e.g. 'storage.sqlite.path'. */
  readonly path: string;
  readonly segments: readonly string[];
  /** KASA_MONITOR_<SECTION>_<KEY>, e.g. KASA_MONITOR_STORAGE_SQLITE_PATH. */
  readonly envName: string;
  readonly kind: KeyKind;
  readonly reload: Reload;
  readonly secret: boolean;
  readonly description: string;
  /** The key's own schema (with its default): parses one value of this key alone. */
  readonly schema: z.core.$ZodType;
}

interface LooseDef {
  type: string;
  innerType?: z.core.$ZodType;
  in?: z.core.$ZodType;
  shape?: Record<string, z.core.$ZodType>;
  options?: readonly z.core.$ZodType[];
}

function defOf(schema: z.core.$ZodType): LooseDef {
  return schema._zod.def as unknown as LooseDef;
}

const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch', 'nonoptional']);

/** Strips defaults, optionality and transforms down to the schema that checks the input's type. */
function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let current = schema;
  for (;;) {
    const def = defOf(current);
    if (WRAPPERS.has(def.type) && def.innerType) current = def.innerType;
    else if (def.type === 'pipe' && def.in) current = def.in;
    else return current;
  }
}

function kindOf(schema: z.core.$ZodType): KeyKind {
  const def = defOf(unwrap(schema));
  switch (def.type) {
    case 'boolean':
      return 'boolean';
    case 'number':
      return 'number';
    case 'array':
      return 'list';
    case 'record':
      return 'map';
    case 'union': {
      const types = (def.options ?? []).map((option) => defOf(unwrap(option)).type);
      if (types.includes('array')) return 'list';
      if (types.includes('number') && types.includes('string')) return 'duration';
      return 'string';
    }
    default:
      return 'string';
  }
}

function collect(schema: z.core.$ZodType, segments: string[], out: ConfigKey[]): void {
  const def = defOf(unwrap(schema));
  if (def.type === 'object' && def.shape) {
    for (const [name, child] of Object.entries(def.shape)) collect(child, [...segments, name], out);
    return;
  }
  const info = keyRegistry.get(schema);
  if (!info) throw new Error(`config key ${segments.join('.')} has no reload tag`);
  const description = (schema as z.ZodType).meta()?.description ?? '';
  out.push({
    path: segments.join('.'),
    segments,
    envName: `KASA_MONITOR_${segments.join('_').toUpperCase()}`,
    kind: kindOf(schema),
    reload: info.reload,
    secret: info.secret === true,
    description,
    schema,
  });
}

/** Every leaf key of the configuration, in schema order. */
export const CONFIG_KEYS: readonly ConfigKey[] = (() => {
  const out: ConfigKey[] = [];
  collect(createConfigSchema({}), [], out);
  return out;
})();

const BY_PATH = new Map(CONFIG_KEYS.map((entry) => [entry.path, entry]));

export function configKey(path: string): ConfigKey | undefined {
  return BY_PATH.get(path);
}

/** The keys allowed directly under a section path ('' for the top level). */
export function allowedKeysAt(sectionPath: string): string[] {
  const depth = sectionPath === '' ? 0 : sectionPath.split('.').length;
  const prefix = sectionPath === '' ? '' : `${sectionPath}.`;
  const names: string[] = [];
  for (const entry of CONFIG_KEYS) {
    if (!entry.path.startsWith(prefix)) continue;
    const name = entry.segments[depth];
    if (name !== undefined && !names.includes(name)) names.push(name);
  }
  return names;
}

/** The leaf key a (possibly deeper) path falls under: 'discovery.hosts.2' → the discovery.hosts key. */
export function keyContaining(segments: readonly (string | number)[]): ConfigKey | undefined {
  for (let length = segments.length; length > 0; length--) {
    const found = BY_PATH.get(segments.slice(0, length).join('.'));
    if (found) return found;
  }
  return undefined;
}
