// What a watch settles before its first poll: every option checked (a typo fails at once, not at the first
// checkpoint) and the branch's watch lock taken.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError, isCkvcError } from '../../core/errors.js';
import { assertRefName } from '../../core/ref-name.js';
import { candidateRules } from './candidate-names.js';
import { ioError } from '../../store/durable-fs.js';
import { acquireLock, type HeldLock } from '../../store/lock-file.js';
import type { ObjectStore } from '../../store/object-store.js';
import { parseLabels } from '../commit-input.js';
import { readConfigFile } from '../config-file.js';
import { WATCH_LABELS } from './branch-history.js';
import { parseCheckCommand, type CheckCommand } from './check-gate.js';
import type { WatchOptions } from './watch-types.js';

export const WATCH_DEFAULTS = { intervalMs: 2000, settleMs: 5000, message: 'watch: {name}' } as const;

export interface Settings {
  dir: string;
  branch: string;
  intervalMs: number;
  settleMs: number;
  once: boolean;
  message: string;
  labels: Record<string, string>;
  metricsFile?: string;
  stepFromName: boolean;
  rules: ReturnType<typeof candidateRules>;
  check?: CheckCommand;
  storeRoot: string;
}

/** Everything the user gave is checked before the first poll, so a typo fails at once rather than at the first checkpoint. */
export async function settings(store: ObjectStore, opts: WatchOptions): Promise<Settings> {
  if (typeof opts.dir !== 'string' || opts.dir === '')
    throw new CkvcError('CKVC_BAD_ARGUMENT', 'give the folder to watch: ckvc watch DIR -b BRANCH', {});
  const dir = path.resolve(opts.dir);
  // A watch started before its trainer waits for the folder; --once (from cron) has nothing to wait for.
  const st = await fs.stat(dir).catch((e: NodeJS.ErrnoException) => {
    if ((e.code === 'ENOENT' || e.code === 'ENOTDIR') && !opts.once) return undefined;
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR')
      throw new CkvcError(
        'CKVC_INPUT_NOT_FOUND',
        `the folder to watch, ${dir}, does not exist; create it (the training job's checkpoint folder) or check the path`,
        { path: dir },
      );
    throw new CkvcError(
      'CKVC_IO',
      `cannot read ${dir}: ${e.code ?? e.message}; check the permissions`,
      { path: dir },
      { cause: e },
    );
  });
  if (st && !st.isDirectory())
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `${dir} is a file, not a folder; watch the folder the training job writes its checkpoints into`,
      { path: dir },
    );
  if (typeof opts.branch !== 'string' || opts.branch === '')
    throw new CkvcError('CKVC_BAD_ARGUMENT', 'a watch needs the branch to commit to: -b BRANCH', {});
  assertRefName(opts.branch, 'branch');
  const intervalMs = opts.intervalMs ?? WATCH_DEFAULTS.intervalMs;
  const settleMs = opts.settleMs ?? WATCH_DEFAULTS.settleMs;
  if (!Number.isFinite(intervalMs) || intervalMs <= 0)
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `the poll interval must be a positive time, got ${String(intervalMs)} ms`,
      { intervalMs },
    );
  if (!Number.isFinite(settleMs) || settleMs < 0)
    throw new CkvcError('CKVC_BAD_ARGUMENT', `the settle time must be 0 or more, got ${String(settleMs)} ms`, {
      settleMs,
    });
  const message = opts.message ?? WATCH_DEFAULTS.message;
  if (message.trim() === '')
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      'the commit message template is empty; give one such as -m "step {step}"',
      {},
    );
  const labels = parseLabels(opts.labels);
  for (const k of Object.values(WATCH_LABELS)) {
    if (k in labels)
      throw new CkvcError('CKVC_BAD_ARGUMENT', `the label "${k}" is set by ckvc watch itself; choose another name`, {
        label: k,
      });
  }
  if (opts.config) await readConfigFile(opts.config);
  for (const p of opts.patterns ?? []) {
    if (p.includes('/'))
      throw new CkvcError(
        'CKVC_BAD_ARGUMENT',
        `pattern ${JSON.stringify(p)} contains '/'; patterns match the names of entries directly in ${dir}, e.g. "step_*.pt"`,
        { pattern: p },
      );
  }
  let metricsFile: string | undefined;
  const metricsNames: string[] = [];
  if (opts.metricsFile) {
    metricsFile = path.resolve(opts.metricsFile);
    if ((await fs.stat(metricsFile).catch(() => undefined))?.isDirectory()) {
      throw new CkvcError('CKVC_BAD_ARGUMENT', `metrics file ${metricsFile} is a folder; give a JSON or JSONL file`, {
        path: metricsFile,
      });
    }
    // A metrics file kept beside the checkpoints is not one of them.
    if (path.dirname(metricsFile) === dir) metricsNames.push(path.basename(metricsFile));
  }
  return {
    dir,
    branch: opts.branch,
    intervalMs,
    settleMs,
    once: opts.once ?? false,
    message,
    labels,
    metricsFile,
    stepFromName: opts.stepFromName ?? true,
    rules: candidateRules(opts.patterns ?? [], metricsNames),
    ...(opts.check !== undefined ? { check: parseCheckCommand(opts.check) } : {}),
    storeRoot: await fs.realpath(store.root).catch(() => path.resolve(store.root)),
  };
}

/**
 * One watcher per branch (spec/FORMAT.md §7): a second would find the same checkpoints not yet committed and
 * commit each one again. A watcher that died leaves a stale lock, which the next one breaks.
 */
export async function lockBranch(store: ObjectStore, branch: string): Promise<HeldLock> {
  await fs.mkdir(store.layout.watchLocksDir, { recursive: true }).catch((e) => {
    throw ioError(e, 'create folder', store.layout.watchLocksDir);
  });
  const file = store.layout.watchLockFile(branch);
  try {
    return await acquireLock(file, `branch '${branch}'`, 0);
  } catch (e) {
    if (!isCkvcError(e, 'CKVC_LOCKED')) throw e;
    const owner = e.data.owner;
    throw new CkvcError(
      'CKVC_LOCKED',
      `branch '${branch}' is already being watched by ${owner?.pid ? `process ${owner.pid} on ${owner.host}` : 'another process'}; a second watcher would commit every checkpoint twice. Stop that one first (or watch into another branch); if it is gone, remove ${file}`,
      { branch, path: file, owner },
    );
  }
}
