/**
 * Characters that must never reach a log line or a terminal as themselves: every C0 control (NUL and LF end a
 * journal record; ESC starts terminal sequences), DEL, every C1 control (U+0085 is a line break to
 * some readers), the Unicode line and paragraph separators, and the bidirectional marks, embeddings,
 * overrides and isolates that make a line read differently from what it holds. Device names reach
 * log lines and terminal tables and are untrusted.
 */
const UNSAFE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const SHORT_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Writes each unsafe character as a visible escape (`\n`, `\u001b`, `\u202e`): one record stays one
 * line, and a name cannot move the cursor, recolour a terminal or reverse the text around it.
 */
export function visibleText(text: string): string {
  return text.replace(
    UNSAFE,
    (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
