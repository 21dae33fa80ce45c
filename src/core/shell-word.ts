// One word for a POSIX shell, for commands ckvc prints or runs remotely: single-quoted, a single quote inside
// written '\'' (paths, names and globs are anyone's, and may hold spaces, quotes or `$`).
export function shellWord(text: string): string {
  return `'${text.replace(/'/g, "'\\''")}'`;
}
