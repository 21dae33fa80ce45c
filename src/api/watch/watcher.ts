// `ckvc watch`: commit each checkpoint a training loop writes into a folder, once it is complete. The folder is
// polled (fs.watch misses events on NFS and other network filesystems, where checkpoints often live); a
// checkpoint is complete once its signature has stayed the same for the settle time (api/watch/settle-rule.ts),
// and each commit is an ordinary `commit` carrying labels that let a restarted watcher skip what the branch
// already holds (branch-history.ts). A stop lets the commit in progress finish; only an abort interrupts it.
import * as fs from 'node:fs/promises';
import { CkvcError, isCkvcError, type ErrorCode } from '../../core/errors.js';
import { trainingOrder, watchMessage } from './candidate-names.js';
import { SettleTracker } from './settle-rule.js';
import type { ObjectStore } from '../../store/object-store.js';
import { commit } from '../commit.js';
import { committedCheckpoints, WATCH_LABELS, watchKey } from './branch-history.js';
import { readCheckpointMetrics, sidecarState } from './metrics-sources.js';
import { scanFolder, signatureOf, type Candidate } from './folder-scan.js';
import { unfinishedCheckpoint } from './completeness.js';
import { runCheck } from './check-gate.js';
import { lockBranch, settings, type Settings } from './settings.js';
import type { WatchCommit, WatchEvent, WatchHandle, WatchOptions, WatchSummary } from './watch-types.js';

export { WATCH_DEFAULTS } from './settings.js';

/** Input errors that concern one checkpoint: the watch goes on without it. Anything else ends the watch. */
// A checkpoint the trainer left broken (killed mid torch.save) must not stop the watch: skip it until it changes.
const CHECKPOINT_ERRORS: ReadonlySet<ErrorCode> = new Set([
  'CKVC_BAD_SAFETENSORS',
  'CKVC_BAD_TENSOR_FILE',
  'CKVC_BAD_ARGUMENT',
  'CKVC_INPUT_NOT_FOUND',
]);

/** What became of a settled checkpoint: dealt with (committed, skipped or gone), or to be tried again later. */
type Outcome = 'done' | 'not-complete';

class Watcher {
  private stopping = false;
  private commitAbort: AbortController | undefined;
  /** The running --check: a stop ends it too (nothing is lost; the checkpoint is checked again next time). */
  private checkAbort: AbortController | undefined;
  private wake: (() => void) | undefined;
  current: string | undefined;
  private readonly commits: WatchCommit[] = [];
  private committed = new Set<string>();
  /** name -> key of a state that cannot be committed; the name is tried again once its key changes. */
  private readonly failed = new Map<string, string>();
  /** Names reported as pending and not yet committed, skipped or gone. */
  private readonly announced = new Set<string>();
  /** name -> last problem reported while scanning it, so a persistent problem is reported once. */
  private readonly problems = new Map<string, string>();

  constructor(
    private readonly store: ObjectStore,
    private readonly opts: WatchOptions,
  ) {}

  stop(): void {
    this.stopping = true;
    this.checkAbort?.abort();
    this.wake?.();
  }

  abort(): void {
    this.stopping = true;
    this.commitAbort?.abort();
    this.checkAbort?.abort();
    this.wake?.();
  }

  private emit(e: WatchEvent): void {
    this.opts.onEvent?.(e);
  }

  async run(): Promise<WatchSummary> {
    const s = await settings(this.store, this.opts);
    const lock = await lockBranch(this.store, s.branch);
    try {
      return await this.loop(s);
    } finally {
      await lock.release();
    }
  }

  /** Polls until the watched folder exists (or the watch is stopped); a file there is refused as at the start. */
  private async waitForFolder(s: Settings): Promise<void> {
    let announced = false;
    while (!this.stopping) {
      const st = await fs.stat(s.dir).catch(() => undefined);
      if (st?.isDirectory()) return;
      if (st)
        throw new CkvcError(
          'CKVC_BAD_ARGUMENT',
          `${s.dir} is a file, not a folder; watch the folder the training job writes its checkpoints into`,
          { path: s.dir },
        );
      if (!announced) this.emit({ type: 'waiting', dir: s.dir });
      announced = true;
      await this.sleep(s.intervalMs);
    }
  }

  private async loop(s: Settings): Promise<WatchSummary> {
    await this.waitForFolder(s);
    if (this.stopping) return { commits: this.commits, incomplete: [] };
    this.committed = await committedCheckpoints(this.store, s.branch);
    const tracker = new SettleTracker(s.settleMs);
    // The settle clock of everything seen by the first poll starts at that poll.
    let started = 0;
    let first = true;
    let incomplete: string[] = [];
    while (!this.stopping) {
      const scan = await scanFolder(s.dir, s.rules, s.storeRoot);
      const now = performance.now();
      if (first) started = now;
      this.reportProblems(scan.problems);
      const pending: { c: Candidate; key: string }[] = [];
      const newlySeen: Candidate[] = [];
      let alreadyCommitted = 0;
      for (const c of scan.candidates) {
        const key = watchKey(c.name, c.signature);
        if (this.committed.has(key)) {
          alreadyCommitted++;
          continue;
        }
        if (this.failed.get(c.name) === key) continue;
        this.failed.delete(c.name);
        // A sidecar still being written delays its checkpoint, but is not part of what the signature records.
        const side = await sidecarState(c);
        tracker.observe(c.name, side === undefined ? c.signature : `${c.signature}+${side}`, now);
        pending.push({ c, key });
        if (!this.announced.has(c.name)) newlySeen.push(c);
      }
      const pendingNames = new Set(pending.map((p) => p.c.name));
      tracker.keepOnly(pendingNames);
      for (const n of this.announced) if (!pendingNames.has(n)) this.announced.delete(n);
      if (first) {
        this.emit({
          type: 'start',
          dir: s.dir,
          branch: s.branch,
          intervalMs: s.intervalMs,
          settleMs: s.settleMs,
          once: s.once,
          candidates: scan.candidates.length,
          alreadyCommitted,
        });
        first = false;
      }
      for (const c of newlySeen) {
        this.announced.add(c.name);
        this.emit({ type: 'pending', name: c.name, kind: c.kind });
      }

      // With `once`, the only decision is taken one settle period after the first look.
      const final = s.once && now - started >= s.settleMs;
      const unsettled = new Set(pendingNames);
      if (!s.once || final) {
        const ready = pending.filter((p) => tracker.isSettled(p.c.name, now)).sort((a, b) => trainingOrder(a.c, b.c));
        for (const p of ready) {
          if (this.stopping) break;
          if ((await this.commitOne(s, p.c, p.key, tracker)) !== 'not-complete') unsettled.delete(p.c.name);
        }
      }
      if (final) {
        // A stop cut the round short: what was not tried is not known to be incomplete.
        if (!this.stopping) incomplete = [...unsettled];
        for (const name of incomplete) this.emit({ type: 'incomplete', name });
        break;
      }
      if (this.stopping) break;
      await this.sleep(
        s.once ? Math.min(s.intervalMs, Math.max(0, started + s.settleMs - performance.now())) : s.intervalMs,
      );
    }
    return { commits: this.commits, incomplete };
  }

  /** Commits one settled checkpoint; says what became of it. */
  private async commitOne(s: Settings, c: Candidate, key: string, tracker: SettleTracker): Promise<Outcome> {
    // Earlier commits of this round may have taken a while: make sure it is still the state that settled.
    let fresh: Candidate | undefined;
    try {
      fresh = await signatureOf(c.name, c.path, s.storeRoot);
    } catch (e) {
      this.emit({ type: 'warning', message: `${c.name}: ${(e as Error).message}; trying again at the next poll` });
      return 'not-complete';
    }
    if (!fresh) return this.gone(c, tracker);
    if (fresh.signature !== c.signature) {
      tracker.restart(c.name, performance.now());
      return 'not-complete';
    }
    const unfinished = await unfinishedCheckpoint(c.path, c.kind);
    if (unfinished) {
      // Settled but visibly cut short: tried again once it changes (the trainer finishes or rewrites it).
      this.failed.set(c.name, key);
      this.emit({ type: 'unfinished', name: c.name, reason: unfinished });
      return 'not-complete';
    }

    const checked = s.check ? await this.runCheck(s, c, key, tracker) : undefined;
    if (checked) return checked;

    const m = await readCheckpointMetrics(c, { metricsFile: s.metricsFile, stepFromName: s.stepFromName });
    for (const w of m.warnings) this.emit({ type: 'warning', message: `${c.name}: ${w}` });
    // A stop that came while the metrics were read: this commit has not started, so it is not started at all.
    if (this.stopping) return 'not-complete';
    this.emit({
      type: 'committing',
      name: c.name,
      kind: c.kind,
      bytes: c.bytes,
      files: c.files,
      ...(m.step !== undefined ? { step: m.step } : {}),
    });
    const ac = new AbortController();
    this.commitAbort = ac;
    this.current = c.name;
    try {
      const r = await commit(this.store, {
        paths: [c.path],
        branch: s.branch,
        message: watchMessage(s.message, { name: c.name, step: m.step }),
        config: this.opts.config,
        metrics: m.metrics,
        step: m.step,
        epoch: m.epoch,
        run: this.opts.run,
        labels: { ...s.labels, [WATCH_LABELS.source]: c.name, [WATCH_LABELS.signature]: c.signature },
        author: this.opts.author,
        cwd: this.opts.cwd,
        // Aborted only by abort(): a plain stop lets this commit land.
        signal: ac.signal,
      });
      this.committed.add(key);
      this.announced.delete(c.name);
      tracker.forget(c.name);
      const done: WatchCommit = {
        id: r.id,
        name: c.name,
        branch: r.branch,
        signature: c.signature,
        ...(m.step !== undefined ? { step: m.step } : {}),
        ...(m.epoch !== undefined ? { epoch: m.epoch } : {}),
        metrics: m.metrics,
        files: r.files,
        tensors: r.tensors,
        bytes: r.bytes,
        newBytes: r.newBytes,
        ...(r.aliases ? { aliases: r.aliases } : {}),
      };
      this.commits.push(done);
      this.emit({ type: 'committed', commit: done, warnings: r.warnings ?? [] });
      return 'done';
    } catch (e) {
      if (!isCkvcError(e) || e.code === 'CKVC_INTERRUPTED') throw e;
      if (e.code === 'CKVC_INPUT_CHANGED') {
        // The commit saw a file still being written and recorded nothing: not complete after all.
        tracker.restart(c.name, performance.now());
        this.emit({ type: 'retry', name: c.name, reason: e.message });
        return 'not-complete';
      }
      if (e.code === 'CKVC_LOCKED') {
        this.emit({ type: 'warning', message: `${c.name}: ${e.message}; trying again at the next poll` });
        return 'not-complete';
      }
      if (!(await exists(c.path))) return this.gone(c, tracker);
      // The config file is the user's, not the checkpoint's: its problems end the watch.
      if (!CHECKPOINT_ERRORS.has(e.code) || (this.opts.config !== undefined && e.data.path === this.opts.config))
        throw e;
      this.failed.set(c.name, key);
      this.announced.delete(c.name);
      tracker.forget(c.name);
      this.emit({ type: 'skipped', name: c.name, reason: e.message, code: e.code });
      return 'done';
    } finally {
      this.current = undefined;
      this.commitAbort = undefined;
    }
  }

  /**
   * Runs --check on a settled candidate. Undefined: commit it. Otherwise it is not committed now: the check
   * refused it ('done': skipped until it changes), or it changed while being checked (checked again once settled).
   */
  private async runCheck(s: Settings, c: Candidate, key: string, tracker: SettleTracker): Promise<Outcome | undefined> {
    const ac = new AbortController();
    this.checkAbort = ac;
    let refusal: string | undefined;
    try {
      refusal = await runCheck(s.check!, c.path, ac.signal);
    } catch (e) {
      if (isCkvcError(e, 'CKVC_INTERRUPTED') && this.stopping) return 'not-complete';
      throw e;
    } finally {
      this.checkAbort = undefined;
    }
    if (refusal !== undefined) {
      this.failed.set(c.name, key);
      this.announced.delete(c.name);
      tracker.forget(c.name);
      this.emit({ type: 'skipped', name: c.name, reason: refusal });
      return 'done';
    }
    const after = await signatureOf(c.name, c.path, s.storeRoot).catch(() => undefined);
    if (!after) return this.gone(c, tracker);
    if (after.signature === c.signature) return undefined;
    // What was checked is not what would be committed: check it again once it has settled.
    tracker.restart(c.name, performance.now());
    return 'not-complete';
  }

  /** Removed before it could be committed (checkpoint rotation, a rename): nothing to do. */
  private gone(c: Candidate, tracker: SettleTracker): Outcome {
    tracker.forget(c.name);
    this.announced.delete(c.name);
    this.emit({ type: 'skipped', name: c.name, reason: `${c.path} was removed before it could be committed` });
    return 'done';
  }

  private reportProblems(problems: { name: string; error: CkvcError }[]): void {
    const now = new Set<string>();
    for (const p of problems) {
      now.add(p.name);
      if (this.problems.get(p.name) === p.error.message) continue;
      this.problems.set(p.name, p.error.message);
      this.emit({
        type: 'warning',
        message: `${p.name}: ${p.error.message} [${p.error.code}]; it is left out until that changes`,
      });
    }
    for (const n of this.problems.keys()) if (!now.has(n)) this.problems.delete(n);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

/** Starts watching; the returned handle stops it. Errors in the options reject `done` before the first poll. */
export function watch(store: ObjectStore, opts: WatchOptions): WatchHandle {
  const w = new Watcher(store, opts);
  const done = w.run();
  return {
    stop: () => w.stop(),
    abort: () => w.abort(),
    get committing() {
      return w.current;
    },
    done,
  };
}
