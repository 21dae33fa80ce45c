// `ckvc watch DIR -b BRANCH`: the long-running side of api/watch/watcher.ts. It renders the watcher's events and turns
// SIGINT/SIGTERM into stop (first) and abort (second).
import { CkvcError } from '../../core/errors.js';
import { parseDuration } from '../../core/duration.js';
import type { WatchEvent, WatchHandle } from '../../api/index.js';
import { addCommand, withStore, type CliParser } from '../context.js';
import { bytes, info, metrics, out, short } from '../render.js';
import { escaped } from '../terminal-text.js';

// One paragraph per line: yargs wraps them to the terminal.
const EPILOG = [
  'Candidates are the entries directly in DIR: files (step_1000.pt) or folders (checkpoint-500/). Hidden names, temp names (*.tmp, *.part, *.partial, *~, tmp-*, ...), the --metrics-file and NAME.metrics.json sidecars are never candidates. Without --pattern, symlinks, logs, metrics and configs (*.log, *.txt, *.json, *.jsonl, *.csv, *.yaml, *.py, ...) and log folders (runs, lightning_logs, wandb, ...) are left out too.',
  "A checkpoint is complete once its signature (a file's size and mtime; a folder's files with their sizes and mtimes) has stayed the same for --settle; set it longer than the longest pause of your writer. A file renamed into place is complete after --settle as well. If a checkpoint still changes while being committed, nothing is recorded and it is tried again once it has settled again.",
  "Metrics come from NAME.metrics.json beside the checkpoint (or metrics.json inside a folder checkpoint), whose fields win, and from --metrics-file, which fills in the rest: a JSON object, or for a .jsonl log the last complete line whose step is not past the checkpoint's. Numeric fields become metrics (nested objects as a/b); step (or global_step) and epoch become the commit's step and epoch. Without a step there, the number in the name is the step (step_1000.pt -> 1000).",
  "--check CMD runs before each commit: CMD is split into words like $CKVC_SSH (quotes and backslashes; no shell, so no pipes or variables unless you write sh -c '...' yourself) and run with the checkpoint's absolute path added as its last argument and in $CKVC_CHECKPOINT. Exit 0 commits it; any other status skips it, with that status and the first line of its stderr, until it changes. Its stdout is not shown.",
  "Every commit carries the labels watch.source=NAME and watch.signature=SIGNATURE. On start the branch's history is read and checkpoints already committed in that exact state are skipped, so a restart commits nothing twice; a checkpoint rewritten under the same name is committed again.",
  'SIGINT/SIGTERM: a commit in progress is finished, then ckvc exits 0; a second signal interrupts it (exit 130, nothing of it recorded). Each commit prints "COMMIT-ID NAME" on stdout (with --json, one JSON object per line); progress goes to stderr.',
].join('\n\n');

/** "2" and "0.5" are seconds; "500ms", "1m" are durations. */
function milliseconds(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(text)) return Math.round(Number(text) * 1000);
  try {
    return parseDuration(text, what);
  } catch {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `--${what} must be seconds (2, 0.5) or a duration (500ms, 1m), got ${JSON.stringify(text)}`,
      { [what]: text },
    );
  }
}

const seconds = (ms: number) => `${ms / 1000}s`;

// Checkpoint names are whatever the training job (or anyone with write access to DIR) called its files.
function render(e: WatchEvent, asJson: boolean): void {
  switch (e.type) {
    case 'start':
      info(
        e.once
          ? `ckvc watch: looking at ${escaped(e.dir)} for ${seconds(e.settleMs)} -> branch ${escaped(e.branch)}; ${e.candidates} checkpoint(s) there, ${e.alreadyCommitted} already committed`
          : `ckvc watch: watching ${escaped(e.dir)} -> branch ${escaped(e.branch)} (poll every ${seconds(e.intervalMs)}, complete after ${seconds(e.settleMs)} unchanged); ${e.candidates} checkpoint(s) there, ${e.alreadyCommitted} already committed; Ctrl-C to stop`,
      );
      return;
    case 'waiting':
      info(
        `ckvc watch: ${escaped(e.dir)} does not exist yet; waiting for the training job to create it (Ctrl-C to stop)`,
      );
      return;
    case 'unfinished':
      info(
        `ckvc watch: ${escaped(e.name)} is not finished (${escaped(e.reason)}); it is committed once it changes and settles`,
      );
      return;
    case 'pending':
      info(`ckvc watch: new ${e.kind} ${escaped(e.name)}; waiting until it stops changing`);
      return;
    case 'committing':
      info(
        `ckvc watch: committing ${escaped(e.name)} (${e.kind === 'folder' ? `${e.files} file(s), ` : ''}${bytes(e.bytes)}${e.step !== undefined ? `, step ${e.step}` : ''})`,
      );
      return;
    case 'committed': {
      const c = e.commit;
      if (asJson) out(JSON.stringify(c));
      else out(`${c.id} ${escaped(c.name)}`);
      const m = metrics(c.metrics);
      info(
        `[${escaped(c.branch)} ${short(c.id)}] ${escaped(c.name)}: ${c.files} file(s), ${c.tensors} tensor(s), ${bytes(c.bytes)}; ${bytes(c.newBytes)} new${c.step !== undefined ? `; step ${c.step}` : ''}${m ? `; ${m}` : ''}${c.aliases ? `; new best for alias ${c.aliases.map(escaped).join(', ')}` : ''}`,
      );
      for (const w of e.warnings) info(`ckvc: warning: ${escaped(w)}`);
      return;
    }
    case 'retry':
      info(
        `ckvc watch: ${escaped(e.name)} changed while being committed (nothing recorded); trying again once it stops changing`,
      );
      return;
    case 'skipped':
      info(`ckvc watch: skipping ${escaped(e.name)}: ${escaped(e.reason)}${e.code ? ` [${e.code}]` : ''}`);
      return;
    case 'incomplete':
      info(`ckvc watch: ${escaped(e.name)} is still changing; not committed (run again later)`);
      return;
    case 'warning':
      info(`ckvc watch: warning: ${escaped(e.message)}`);
      return;
  }
}

export function watchCommand(y: CliParser): void {
  addCommand(
    y,
    'watch <dir>',
    'Commit each new checkpoint a training job writes into DIR, once it is complete',
    (a) =>
      a
        .positional('dir', {
          type: 'string',
          demandOption: true,
          describe: 'the folder the training job writes checkpoints into',
        })
        .option('branch', {
          alias: 'b',
          type: 'string',
          demandOption: true,
          describe: 'branch to commit to (created if new)',
        })
        .option('pattern', {
          type: 'string',
          array: true,
          describe: 'glob for checkpoint names in DIR, repeatable (e.g. "step_*.pt", "checkpoint-*")',
        })
        .option('metrics-file', { type: 'string', describe: 'shared metrics: a JSON object file, or a .jsonl log' })
        .option('interval', { type: 'string', describe: 'time between polls (default 2; seconds, or e.g. 500ms)' })
        .option('settle', {
          type: 'string',
          describe: 'how long a checkpoint must stay unchanged to count as complete (default 5; seconds, or e.g. 1m)',
        })
        .option('once', {
          type: 'boolean',
          describe: 'commit what is complete now (after one --settle period), report the rest, exit',
        })
        .option('message', {
          alias: 'm',
          type: 'string',
          describe: 'commit message; {name} and {step} are filled in (default "watch: {name}")',
        })
        .option('config', { type: 'string', describe: 'YAML/JSON config to snapshot into every commit' })
        .option('label', { type: 'string', array: true, describe: 'KEY=VALUE for every commit, repeatable' })
        .option('run', { type: 'string', describe: 'run ID' })
        .option('author', { type: 'string', describe: 'author (default: $CKVC_AUTHOR or user@host)' })
        .option('check', {
          type: 'string',
          describe: 'command run on each checkpoint before committing it (path as last argument); non-zero skips it',
        })
        .option('step-from-name', {
          type: 'boolean',
          default: true,
          describe:
            'without a step in the metrics, take it from the number in the name (--no-step-from-name to turn off)',
        })
        .epilog(EPILOG),
    async (args) => {
      const intervalMs = milliseconds(args.interval, 'interval');
      const settleMs = milliseconds(args.settle, 'settle');
      await withStore(args, async (s) => {
        const handle: WatchHandle = s.watch({
          dir: args.dir,
          branch: args.branch,
          patterns: args.pattern,
          metricsFile: args.metricsFile,
          intervalMs,
          settleMs,
          once: args.once,
          message: args.message,
          config: args.config,
          labels: args.label ?? [],
          run: args.run,
          author: args.author,
          stepFromName: args.stepFromName,
          check: args.check,
          onEvent: (e) => render(e, Boolean(args.json)),
        });
        // The first signal lets the commit in progress land (the training job's checkpoint is worth the wait);
        // only a second one interrupts it.
        let signals = 0;
        const onSignal = (sig: NodeJS.Signals) => {
          const busy = handle.committing;
          if (++signals === 1) {
            info(
              busy
                ? `ckvc watch: ${sig}: finishing the commit of ${escaped(busy)}, then exiting (${sig} again to interrupt it)`
                : `ckvc watch: ${sig}: stopping`,
            );
            handle.stop();
          } else {
            if (busy) info(`ckvc watch: ${sig} again: interrupting the commit of ${escaped(busy)}`);
            handle.abort();
          }
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        try {
          const r = await handle.done;
          info(
            `ckvc watch: ${args.once ? 'done' : 'stopped'}; ${r.commits.length} checkpoint(s) committed${r.incomplete.length ? `, ${r.incomplete.length} still changing` : ''}`,
          );
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      });
    },
  );
}
