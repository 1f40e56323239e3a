import type * as z from 'zod';
import { allowedKeysAt, closest } from './keys.js';

/** A zod issue turned into words: where (key path segments) and what is wrong and allowed. */
export interface IssueText {
  readonly segments: readonly (string | number)[];
  readonly message: string;
  /** Located at the key itself (an unknown key), not at its value. */
  readonly atKey?: boolean;
}

const EXPECTED: Readonly<Record<string, string>> = {
  number: 'a number',
  int: 'a whole number',
  string: 'text',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping of keys',
  record: 'a mapping of names to values',
};

function describeType(input: unknown): string {
  if (input === null || input === undefined) return 'nothing';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  if (typeof input === 'string') return 'text';
  if (typeof input === 'number') return Number.isInteger(input) ? 'a whole number' : 'a number';
  return `a ${typeof input}`;
}

function show(input: unknown): string | undefined {
  if (typeof input === 'number' || typeof input === 'boolean') return String(input);
  if (typeof input === 'string') return input.length > 60 ? `'${input.slice(0, 57)}...'` : `'${input}'`;
  return undefined;
}

function sectionPath(segments: readonly (string | number)[]): string {
  return segments.filter((segment) => typeof segment === 'string').join('.');
}

function allowedKeysText(segments: readonly (string | number)[]): string {
  const where = sectionPath(segments);
  const allowed = allowedKeysAt(where);
  return where === ''
    ? `allowed sections: ${allowed.join(', ')}`
    : `allowed keys in ${where}: ${allowed.join(', ')}`;
}

/**
 * Words for one issue. `echo` allows quoting the offending value (never for secrets).
 * Unknown keys yield one entry per key, at the key's own path.
 */
export function describeIssue(issue: z.core.$ZodIssue, echo: boolean): IssueText[] {
  const segments = issue.path.map((segment) => (typeof segment === 'number' ? segment : String(segment)));
  const got = echo ? show(issue.input) : undefined;
  const withGot = (message: string): IssueText[] => [
    { segments, message: got === undefined || /\bgot\b/.test(message) ? message : `${message}, got ${got}` },
  ];
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((name) => {
        const suggestion = closest(name, allowedKeysAt(sectionPath(segments)));
        return {
          segments: [...segments, name],
          atKey: true,
          message: `unknown key; ${allowedKeysText(segments)}${suggestion ? ` (did you mean '${suggestion}'?)` : ''}`,
        };
      });
    case 'invalid_type': {
      // `listen: 9469` reads as a number: a port alone is not enough to listen on.
      if (sectionPath(segments) === 'http.listen' && typeof issue.input === 'number') {
        return [
          {
            segments,
            message: `needs an address and a port, such as '127.0.0.1:${issue.input}' (this machine only) or '0.0.0.0:${issue.input}' (every interface), got ${issue.input}`,
          },
        ];
      }
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      const extra = issue.expected === 'object' ? ` (${allowedKeysText(segments)})` : '';
      const received = (echo ? show(issue.input) : undefined) ?? describeType(issue.input);
      return [{ segments, message: `must be ${expected}${extra}, got ${received}` }];
    }
    case 'invalid_value':
      return withGot(`must be one of: ${issue.values.map(String).join(', ')}`);
    case 'too_small': {
      // A message the schema wrote itself (zod's own start with "Too small") says it best.
      if (!issue.message.startsWith('Too small')) return withGot(issue.message);
      const minimum = Number(issue.minimum);
      if (issue.origin === 'string') {
        return [
          {
            segments,
            message: minimum <= 1 ? 'must not be empty' : `must be at least ${minimum} characters`,
          },
        ];
      }
      if (issue.origin === 'array' || issue.origin === 'set') {
        return [
          { segments, message: `must list at least ${minimum} ${minimum === 1 ? 'entry' : 'entries'}` },
        ];
      }
      return withGot(
        issue.inclusive === false ? `must be more than ${minimum}` : `must be at least ${minimum}`,
      );
    }
    case 'too_big': {
      if (!issue.message.startsWith('Too big')) return withGot(issue.message);
      const maximum = Number(issue.maximum);
      if (issue.origin === 'string') return [{ segments, message: `must be at most ${maximum} characters` }];
      if (issue.origin === 'array' || issue.origin === 'set') {
        return [{ segments, message: `must list at most ${maximum} entries` }];
      }
      return withGot(
        issue.inclusive === false ? `must be less than ${maximum}` : `must be at most ${maximum}`,
      );
    }
    case 'invalid_key': {
      const inner = issue.issues.map((inner) => inner.message).join('; ');
      const name = show(issue.input);
      return [{ segments, message: `invalid name${name ? ` ${name}` : ''}: ${inner}` }];
    }
    case 'invalid_element':
      return [{ segments, message: issue.issues.map((inner) => inner.message).join('; ') }];
    default:
      // custom, invalid_union and invalid_format carry the messages this schema wrote.
      return withGot(issue.message);
  }
}
