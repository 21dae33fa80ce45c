import * as os from 'node:os';

/** Who made a commit or tag: explicit, else CKVC_AUTHOR, else user@host. */
export function defaultAuthor(explicit?: string): string {
  if (explicit) return explicit;
  if (process.env.CKVC_AUTHOR) return process.env.CKVC_AUTHOR;
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    user = process.env.USER ?? 'unknown';
  }
  return `${user}@${os.hostname()}`;
}
