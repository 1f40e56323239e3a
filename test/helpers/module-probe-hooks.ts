import { appendFileSync } from 'node:fs';

/**
 * Module resolution hooks (node:module register) that append every resolved URL to a file, one per
 * line. They run on Node's hooks thread, so they write straight to the file rather than to memory.
 */
let out: string | null = null;

export function initialize(data: { readonly file: string }): void {
  out = data.file;
}

type Resolve = (
  specifier: string,
  context: unknown,
  nextResolve: (specifier: string, context: unknown) => Promise<{ url: string }>,
) => Promise<{ url: string }>;

export const resolve: Resolve = async (specifier, context, nextResolve) => {
  const result = await nextResolve(specifier, context);
  if (out !== null) appendFileSync(out, `${result.url}\n`);
  return result;
};
