// Text the user did not type themselves (commit and tag messages, file and tensor names, refs, labels, config
// keys; often from someone else's bundle or server) reaches the terminal escaped. Raw, an ESC or C1 byte could
// retitle the window, move the cursor or hide lines; a newline in a file name would forge an extra output line;
// a bidi override would show text in another order than it is stored. --json output is never passed through
// here: it is exact, and JSON escapes control characters itself.
//
// Backslashes are left alone, so ordinary text (Windows paths, LaTeX) prints unchanged; the escapes are for
// reading, not a reversible encoding (--json is that).

// C0 and DEL, C1 (U+0080-U+009F: 0x9B is a one-byte CSI to some terminals), the Unicode line and paragraph
// separators, and the bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069).
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return (
    NAMED[c] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`)
  );
}

/** `s` with every control, line-separator and bidi-override character written as an escape (`\x1b`, `\n`, `\u202e`). */
export function escaped(s: string): string {
  return s.replace(UNSAFE, escapeChar);
}

/** The lines of a multi-line text (a commit message), each escaped: the line breaks stay, nothing else does. */
export function escapedLines(s: string): string[] {
  return s.split(/\r?\n/).map(escaped);
}

/** The first line of a message, escaped: the one-line summary log, branch and best print. */
export function firstLine(s: string): string {
  return escapedLines(s)[0]!;
}
