import * as z from 'zod';
import { createConfigSchema, keyRegistry } from './schema.js';

/**
 * The JSON Schema of the YAML file as users write it (durations as text or seconds, addresses as
 * 'host:port'), with descriptions, defaults and whether a reload applies each key. Editors use it
 * through the `# yaml-language-server: $schema=...` line of the example file.
 */
export function configJsonSchema(): Record<string, unknown> {
  // The environment only changes the computed SQLite path default, which the schema does not show.
  const schema = createConfigSchema({});
  const json = z.toJSONSchema(schema, {
    io: 'input',
    target: 'draft-2020-12',
    override: (ctx) => {
      const info = keyRegistry.get(ctx.zodSchema);
      if (!info) return;
      const note = info.reload === 'hot' ? 'Reload: applies on SIGHUP.' : 'Reload: restart needed.';
      ctx.jsonSchema.description = [ctx.jsonSchema.description, note].filter(Boolean).join(' ');
      if (info.secret) ctx.jsonSchema.writeOnly = true;
    },
  });
  return json as Record<string, unknown>;
}

/** The exact text of config/kasa-monitor.schema.json: 2-space JSON with a trailing newline. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
