// The shapes of the watch API (api/watch/watcher.ts): what a caller asks for, the events it is told as they
// happen, and what it gets back.
import type { ErrorCode } from '../../core/errors.js';
import type { ObjectId } from '../../core/store-format/object-id.js';

export interface WatchOptions {
  /** The folder the training job writes checkpoints into; its direct entries (files or folders) are the candidates. */
  dir: string;
  /** Branch to commit to (created by the first commit if new). */
  branch: string;
  /** Globs matched against entry names; default: every entry that is not hidden, temp, a log or a symlink. */
  patterns?: string[];
  /** Shared metrics: a JSON object file, or a `.jsonl` log whose matching line is used. */
  metricsFile?: string;
  /** Time between polls (default 2000). */
  intervalMs?: number;
  /** How long a checkpoint must stay unchanged to count as complete (default 5000). */
  settleMs?: number;
  /** Commit what is complete after one settle period, report the rest, and finish. */
  once?: boolean;
  /** Commit message; `{name}` and `{step}` are filled in (default "watch: {name}"). */
  message?: string;
  /** YAML/JSON config file snapshotted into every commit. */
  config?: string;
  /** Extra labels for every commit (the watch.* labels are set by the watcher). */
  labels?: string[] | Record<string, string>;
  run?: string;
  author?: string;
  /** Take the step from the last number in the checkpoint's name when no metrics give one (default true). */
  stepFromName?: boolean;
  /** Run before each commit with the checkpoint's path as last argument (check-gate.ts); non-zero skips it. */
  check?: string;
  /** Where to look for the code's git repository; defaults to the current directory. */
  cwd?: string;
  /** Everything the watcher does, as it happens; the API never prints. */
  onEvent?: (event: WatchEvent) => void;
}

export interface WatchCommit {
  id: ObjectId;
  name: string;
  branch: string;
  signature: string;
  step?: number;
  epoch?: number;
  metrics: Record<string, number>;
  files: number;
  tensors: number;
  bytes: number;
  newBytes: number;
  aliases?: string[];
}

export type WatchEvent =
  /** After the first poll: how many candidates there are and how many of them the branch already holds. */
  | {
      type: 'start';
      dir: string;
      branch: string;
      intervalMs: number;
      settleMs: number;
      once: boolean;
      candidates: number;
      alreadyCommitted: number;
    }
  /** A checkpoint not committed yet was seen; it is committed once it has stayed unchanged for the settle time. */
  | { type: 'pending'; name: string; kind: 'file' | 'folder' }
  | { type: 'committing'; name: string; kind: 'file' | 'folder'; bytes: number; files: number; step?: number }
  | { type: 'committed'; commit: WatchCommit; warnings: string[] }
  /** It changed while being committed (nothing was recorded); it is tried again once it has settled again. */
  | { type: 'retry'; name: string; reason: string }
  /** It cannot be committed as it is (or it disappeared); it is tried again only if it changes. */
  | { type: 'skipped'; name: string; reason: string; code?: ErrorCode }
  /** With `once`: still changing when the settle period ended, so not committed. */
  | { type: 'incomplete'; name: string }
  | { type: 'warning'; message: string }
  /** The folder does not exist yet (a watcher started before its trainer): polled until it appears. */
  | { type: 'waiting'; dir: string }
  /** Settled, but visibly unfinished (a pickle without STOP, JSON that does not parse): tried again when it changes. */
  | { type: 'unfinished'; name: string; reason: string };

export interface WatchSummary {
  commits: WatchCommit[];
  /** With `once`: the checkpoints that were not complete. */
  incomplete: string[];
}

export interface WatchHandle {
  /** Finish the commit in progress (if any), then end; `done` resolves. */
  stop(): void;
  /** Interrupt the commit in progress (nothing of it is recorded; `done` rejects with CKVC_INTERRUPTED), or end at once. */
  abort(): void;
  /** The checkpoint being committed right now, if any. */
  readonly committing: string | undefined;
  done: Promise<WatchSummary>;
}
