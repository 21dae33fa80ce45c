// `ckvc watch --check CMD`: the user's gate in front of each commit (an eval, a loader smoke test). CMD is split
// into words like $CKVC_SSH (no shell: nothing of the checkpoint's name or path is ever parsed as shell text) and
// run with the candidate's absolute path as its last argument and in $CKVC_CHECKPOINT. Exit 0 lets the commit go
// ahead; anything else skips the candidate until it changes. Its stdout is not shown (the watcher's stdout is
// the list of commits); the first line of its stderr is quoted when it refuses.
import { spawn } from 'node:child_process';
import { CkvcError } from '../../core/errors.js';
import { splitWords } from '../../remote/ssh-command.js';

/** Enough of stderr to find its first line; the rest is drained and dropped. */
const STDERR_CAP = 4096;

export interface CheckCommand {
  text: string;
  words: string[];
}

/** Parses `--check CMD` once, before the first poll, so a bad quote fails at start. */
export function parseCheckCommand(text: string): CheckCommand {
  const words = splitWords(text, '--check');
  if (words.length === 0) {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      '--check is empty; give the command to run on each checkpoint, ' +
        'e.g. --check "python eval.py" (the checkpoint\'s path is added as its last argument)',
      {},
    );
  }
  return { text, words };
}

/** Undefined when the check accepts the checkpoint; otherwise why it refused (exit status, first stderr line). */
export async function runCheck(
  cmd: CheckCommand,
  checkpoint: string,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const [program, ...args] = cmd.words as [string, ...string[]];
  // Its own process group, so that a stop ends what it started too (a shell's `sleep`, an eval's workers), not
  // only its first process; otherwise they would hold its stderr open and the watcher would wait for them.
  const child = spawn(program, [...args, checkpoint], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
    env: { ...process.env, CKVC_CHECKPOINT: checkpoint },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < STDERR_CAP) stderr += d.slice(0, STDERR_CAP - stderr.length);
  });
  const killGroup = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  };
  signal?.addEventListener('abort', killGroup, { once: true });
  let result: { code: number | null; sig: NodeJS.Signals | null };
  try {
    result = await new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, sig) => resolve({ code, sig }));
    });
  } catch (e) {
    // Not a problem of this checkpoint: every other one would fail the same way, so the watch ends.
    const err = e as NodeJS.ErrnoException;
    const why = err.code ?? err.message;
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `--check: cannot run ${JSON.stringify(program)}: ${why}; ` +
        'give a program on PATH or a path to one (CMD is split into words, not run by a shell)',
      { command: cmd.text },
    );
  } finally {
    signal?.removeEventListener('abort', killGroup);
  }
  if (signal?.aborted) throw new CkvcError('CKVC_INTERRUPTED', `the check of ${checkpoint} was interrupted`, {});
  if (result.code === 0) return undefined;
  const status = result.sig ? `was killed by ${result.sig}` : `exited with status ${String(result.code)}`;
  const first = stderr
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '');
  return `check ${JSON.stringify(cmd.text)} ${status}${first ? `: ${first}` : ''}`;
}
