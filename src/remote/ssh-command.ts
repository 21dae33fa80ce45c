// The ssh command line of an SSH remote (spec/PROTOCOL.md §5): `$CKVC_SSH` (like GIT_SSH_COMMAND) split into
// words without a shell, the destination, and the command the far side's shell runs: `<remote ckvc> serve
// --stdio '<path>'`. The remote ckvc is the user's own command text (like git's --upload-pack), run as written;
// the path is quoted so the far shell takes it as one word.
import { shellWord } from '../core/shell-word.js';
import { CkvcError } from '../core/errors.js';
import type { SshAddress } from './ssh-url.js';

export const DEFAULT_REMOTE_CKVC = 'ckvc';

/**
 * Options for the one session `serve --stdio` needs (after $CKVC_SSH's words, so options written there win: ssh
 * keeps the first value it reads; ~/.ssh/config comes after the command line). The data is compressed chunks
 * already, and ssh's zlib on it halved push and fetch throughput over loopback (`Compression yes` is common advice
 * for slow links); the rest are scp's own choices for a binary stream: no pty (it would rewrite the bytes), no
 * RemoteCommand or LocalCommand (one would replace `serve --stdio`, the other write into the stream), no agent,
 * X11 or port forwarding (a LocalForward already bound by an open session would only fail).
 */
export const SESSION_OPTIONS = [
  'Compression=no',
  'RequestTTY=no',
  'RemoteCommand=none',
  'PermitLocalCommand=no',
  'ForwardAgent=no',
  'ForwardX11=no',
  'ClearAllForwardings=yes',
].flatMap((o) => ['-o', o]);

/** Splits like a POSIX shell, without expansions: whitespace separates, '...' and "..." quote, \ escapes. */
export function splitWords(text: string, what: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
      continue;
    }
    const escapes = c === '\\' && (quote === undefined || /["\\$`]/.test(text[i + 1] ?? ''));
    if (escapes) {
      if (i + 1 >= text.length) {
        throw new CkvcError('CKVC_BAD_ARGUMENT', `${what} ends with a lone backslash`, { text });
      }
      word = (word ?? '') + text[++i];
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= '';
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + c;
  }
  if (quote) throw new CkvcError('CKVC_BAD_ARGUMENT', `${what} has an unclosed ${quote} quote`, { text });
  if (word !== undefined) words.push(word);
  return words;
}

/** One word for a POSIX shell; a leading `~/` stays outside the quotes so the far shell expands it. */
export function shellQuotePath(p: string): string {
  if (p === '~') return '~';
  if (p.startsWith('~/')) return `~/${shellWord(p.slice(2))}`;
  return shellWord(p);
}

export interface SshCommand {
  file: string;
  args: string[];
  /** The command run on the far side, for messages. */
  remoteCommand: string;
}

export function sshCommand(a: SshAddress, remoteCkvc: string, env: NodeJS.ProcessEnv = process.env): SshCommand {
  const source = env.CKVC_SSH ? 'CKVC_SSH' : undefined;
  const words = source ? splitWords(env.CKVC_SSH!, `$CKVC_SSH (${JSON.stringify(env.CKVC_SSH)})`) : ['ssh'];
  if (!words.length) {
    throw new CkvcError('CKVC_BAD_ARGUMENT', '$CKVC_SSH is set but names no command; unset it to use ssh', {});
  }
  const remoteCommand = `${remoteCkvc} serve --stdio ${shellQuotePath(a.path)}`;
  const destination = `${a.user ? `${a.user}@` : ''}${a.host.replace(/^\[(.*)\]$/, '$1')}`;
  const port = a.port ? ['-p', String(a.port)] : [];
  return {
    file: words[0]!,
    args: [...words.slice(1), ...SESSION_OPTIONS, ...port, destination, remoteCommand],
    remoteCommand,
  };
}
