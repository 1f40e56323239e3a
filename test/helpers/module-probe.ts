import { register } from 'node:module';

/**
 * Preload for `node --import <this file>`: records every module the process resolves (its own ES
 * imports and their dependencies) in the file named by MODULE_PROBE_FILE. Tests use it to see what
 * a process loaded; child processes it spawns do not inherit it (it is not in NODE_OPTIONS).
 */
const file = process.env['MODULE_PROBE_FILE'];
if (file !== undefined && file !== '')
  register('./module-probe-hooks.js', import.meta.url, { data: { file } });
