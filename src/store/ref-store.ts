// Branches, tags and HEAD as files (spec/FORMAT.md §6), updated under a per-ref lock by compare-and-swap,
// with an fsynced reflog line for every move so that any earlier tip can be found again.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import { isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import { assertRefName, refNameProblem } from '../core/ref-name.js';
import { appendDurable, fsyncDir, ioError, readFileIfExists, writeFileDurable } from './durable-fs.js';
import { faultPoint } from './fault-injection.js';
import { listFilesBelow } from './file-walk.js';
import { acquireLock, lockHeld, waitUntilFree } from './lock-file.js';
import { applyRefBatch, checkNames, eachLimit, type BatchContext, type RefMove } from './ref-batch.js';
import { moveAsideClashingLogs, reflogFiles, removeEmptyRefFolder } from './reflog-paths.js';
import type { StoreLayout } from './store-layout.js';

export type RefKind = 'branch' | 'tag' | 'alias' | 'remote';
export const REF_PREFIX: Readonly<Record<RefKind, string>> = {
  branch: 'refs/heads/',
  tag: 'refs/tags/',
  alias: 'refs/aliases/',
  remote: 'refs/remotes/',
};

const plural = (kind: RefKind) =>
  kind === 'branch' ? 'branches' : kind === 'tag' ? 'tags' : kind === 'alias' ? 'aliases' : 'remote-tracking refs';

export function refKindOf(full: string): RefKind {
  return full.startsWith(REF_PREFIX.tag)
    ? 'tag'
    : full.startsWith(REF_PREFIX.alias)
      ? 'alias'
      : full.startsWith(REF_PREFIX.remote)
        ? 'remote'
        : 'branch';
}
const ZERO_ID = '0'.repeat(64);

export interface ReflogEntry {
  old: ObjectId | null;
  new: ObjectId | null;
  time: number;
  who: string;
  message: string;
}

export type Head = { kind: 'branch'; branch: string } | { kind: 'detached'; id: ObjectId };

/** What to do when a name is taken: never to delete it (another command may have just made it, with commits). */
function alreadyAdvice(kind: RefKind, short: string): string {
  if (kind === 'tag') return `choose another name, or move it: 'ckvc tag -d ${short}' and tag again`;
  if (kind === 'branch')
    return `choose another name, work on it ('ckvc switch ${short}'), or move it ('ckvc branch -f ${short} START')`;
  return 'choose another name';
}

export class RefStore {
  constructor(private readonly layout: StoreLayout) {}

  private file(full: string): string {
    return path.join(this.layout.root, ...full.split('/'));
  }

  private logFile(full: string): string {
    return path.join(this.layout.logsDir, ...full.split('/'));
  }

  /** The ID a ref holds, or undefined when it does not exist. */
  async read(full: string): Promise<ObjectId | undefined> {
    const raw = await readFileIfExists(this.file(full)).catch((e) => {
      if ((e as CkvcError).data?.errno === 'EISDIR') return undefined;
      throw e;
    });
    if (raw === undefined) return undefined;
    const text = raw.toString('utf8').trim();
    if (!isObjectId(text)) {
      // `ckvc reflog` shows branches' and (with --tag) tags' logs, and -d drops them; an alias's or a
      // remote-tracking ref's log is a file, and the ref a file to delete.
      const short = full.replace(/^refs\/(heads|tags|aliases|remotes)\//, '');
      const [earlier, drop] = full.startsWith(REF_PREFIX.branch)
        ? [`'ckvc reflog ${short}' shows its earlier values`, `'ckvc branch -d ${short}'`]
        : full.startsWith(REF_PREFIX.tag)
          ? [`'ckvc reflog --tag ${short}' shows its earlier values`, `'ckvc tag -d ${short}'`]
          : [`its earlier values are in ${this.logFile(full)}`, 'deleting the file'];
      throw new CkvcError(
        'CKVC_CORRUPT_REF',
        `ref ${full} (${this.file(full)}) does not hold an object ID; ${earlier} (${full.startsWith(REF_PREFIX.branch) ? `'ckvc branch -f ${short} ID' puts one back` : "'ckvc branch NEW ID' or 'ckvc tag NEW ID' puts one back under a new name"}); ${drop} drops the damaged ref (its reflog stays)`,
        { ref: full },
      );
    }
    return text;
  }

  /** Several refs at once (undefined where one does not exist), read a bounded number at a time. */
  async readMany(full: readonly string[]): Promise<(ObjectId | undefined)[]> {
    const out: (ObjectId | undefined)[] = new Array(full.length);
    await eachLimit(full, async (f, i) => {
      out[i] = await this.read(f);
    });
    return out;
  }

  /**
   * With `skipCorrupt`, a ref holding garbage is left out (for decorations) instead of failing the listing; with
   * `onCorrupt` too, and each such ref's error handed to it (verify reports it and checks the others).
   */
  async list(
    kind: RefKind,
    opts: { skipCorrupt?: boolean; onCorrupt?: (e: CkvcError) => void } = {},
  ): Promise<{ name: string; id: ObjectId }[]> {
    const base = this.file(REF_PREFIX[kind].slice(0, -1));
    const names = await listFilesBelow(base);
    const ids: (ObjectId | undefined)[] = new Array(names.length);
    await eachLimit(names, async (name, i) => {
      ids[i] = await this.read(REF_PREFIX[kind] + name).catch((err) => {
        if ((err as CkvcError).code !== 'CKVC_CORRUPT_REF' || !(opts.skipCorrupt || opts.onCorrupt)) throw err;
        opts.onCorrupt?.(err as CkvcError);
        return undefined;
      });
    });
    const out: { name: string; id: ObjectId }[] = [];
    names.forEach((name, i) => {
      if (ids[i]) out.push({ name, id: ids[i]! });
    });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Why `full` cannot be a ref (not under refs/heads|tags|aliases|remotes, or an invalid name), or undefined. */
  nameProblem(full: string): CkvcError | undefined {
    const kind = (Object.keys(REF_PREFIX) as RefKind[]).find((k) => full.startsWith(REF_PREFIX[k]));
    if (!kind)
      return new CkvcError(
        'CKVC_BAD_REF_NAME',
        `${JSON.stringify(full)} is not a ref name: refs live under ${Object.values(REF_PREFIX).join(', ')}`,
        { ref: full },
      );
    const short = full.slice(REF_PREFIX[kind].length);
    const problem = refNameProblem(short);
    return problem
      ? new CkvcError('CKVC_BAD_REF_NAME', `invalid ${kind} name ${JSON.stringify(short)} (${full}): it ${problem}`, {
          name: short,
          ref: full,
          kind,
          problem,
        })
      : undefined;
  }

  private batchContext(): BatchContext {
    return {
      file: (f) => this.file(f),
      logFile: (f) => this.logFile(f),
      logsDir: this.layout.logsDir,
      nameProblem: (f) => this.nameProblem(f),
      read: (f) => this.read(f),
      batchLock: this.layout.refBatchLockFile,
    };
  }

  /** The checks of a batch that need no lock (names, folder clashes): to refuse a batch before other work. */
  async checkMoves(moves: readonly RefMove[]): Promise<void> {
    await checkNames(this.batchContext(), moves);
  }

  /**
   * Moves many refs as one batch (spec/FORMAT.md §6.5): every name, folder clash and compare-and-swap is
   * checked under the batch lock before any of them moves, so a refused batch changes nothing.
   */
  async updateMany(moves: readonly RefMove[], opts: { who: string; message: string }): Promise<void> {
    await applyRefBatch(this.batchContext(), moves, opts);
  }

  /**
   * Moves `full` to `next` (or deletes it when next is null) if it currently holds `expect`
   * (null: must not exist; undefined: any value). The caller has made `next` and everything it reaches durable.
   */
  async update(
    full: string,
    next: ObjectId | null,
    /** `expectDamaged`: the ref must hold something that is no object ID (deleting a damaged ref; `expect` unused). */
    opts: { expect?: ObjectId | null; expectDamaged?: boolean; who: string; message: string },
  ): Promise<void> {
    const kind = refKindOf(full);
    const short = full.slice(REF_PREFIX[kind].length);
    assertRefName(short, kind);
    const file = this.file(full);
    await this.ensureNoPathClash(full, short, kind);
    await fs.mkdir(path.dirname(file), { recursive: true }).catch((e) => {
      throw ioError(e, 'create', path.dirname(file));
    });
    await this.underLock(file, `${kind} ${short}`, async () => {
      faultPoint('ref.lock');
      const damaged = opts.expectDamaged ? await this.stillDamaged(full, kind, short) : undefined;
      // A damaged ref's line names the last value its reflog gives it: dated now, it keeps that commit for the
      // reflog's expiry time like any deletion's line (the older lines may be about to expire).
      const cur = damaged ? damaged.lastKnown : await this.read(full);
      if (!opts.expectDamaged && opts.expect !== undefined && (cur ?? null) !== opts.expect) {
        // Expected absent: either the name was taken before (re-running fails again) or another command made it
        // while this one ran (its commits are someone's: never advise deleting it).
        const what =
          opts.expect === null
            ? `${kind} '${short}' already exists (at ${cur!.slice(0, 12)}); ${alreadyAdvice(kind, short)}`
            : `${kind} '${short}' moved to ${cur?.slice(0, 12) ?? '(deleted)'} while this command ran (expected ${opts.expect.slice(0, 12)}); re-run the command against the current tip`;
        throw new CkvcError('CKVC_REF_CONFLICT', what, {
          ref: full,
          expected: opts.expect,
          actual: cur ?? null,
        });
      }
      // Only once the move will go ahead (a refused one changes nothing): a deleted ref's reflog standing where
      // this ref's log goes is moved aside (reflog-paths.ts).
      if (next !== null) await moveAsideClashingLogs(this.layout.logsDir, full);
      const log = this.logFile(full);
      await fs.mkdir(path.dirname(log), { recursive: true }).catch((e) => {
        throw ioError(e, 'create', path.dirname(log));
      });
      // Reflog first: if we die between the two, the log names a tip the ref never reached, which is harmless;
      // the other order could lose the only record of the previous tip.
      const oneLine = (damaged ? `${opts.message}; it held ${damaged.held}` : opts.message).replace(/[\r\n\t]+/g, ' ');
      const undoLog = await appendDurable(
        log,
        `${cur ?? ZERO_ID} ${next ?? ZERO_ID} ${Date.now()} ${opts.who.replace(/\s+/g, '_')}\t${oneLine}\n`,
      );
      try {
        if (next === null) {
          faultPoint('ref.rename');
          await fs.rm(file, { force: true }).catch((e) => {
            throw ioError(e, 'delete', file);
          });
          faultPoint('ref.dirsync');
          await fsyncDir(path.dirname(file));
        } else {
          await writeFileDurable(file, `${next}\n`, 'ref');
        }
      } catch (e) {
        // The ref did not move (or its move is not known to be durable): take back the reflog line when the
        // ref still holds the old value, so a failed command leaves the store as it was.
        const asBefore = damaged
          ? await this.read(full).then(
              () => false,
              (re) => (re as CkvcError).code === 'CKVC_CORRUPT_REF',
            )
          : (await this.read(full).catch(() => undefined)) === (cur ?? undefined);
        if (asBefore) await undoLog().catch(() => {});
        throw ioError(e, 'update', file);
      }
      faultPoint('ref.done');
    });
  }

  /**
   * What a damaged ref held (quoted, cut short) and the last value its reflog gives it, while it still holds no
   * object ID; a conflict once it does or is gone.
   */
  private async stillDamaged(
    full: string,
    kind: RefKind,
    short: string,
  ): Promise<{ held: string; lastKnown?: ObjectId }> {
    const now = await this.read(full).catch((e) => {
      if ((e as CkvcError).code === 'CKVC_CORRUPT_REF') return 'damaged' as const;
      throw e;
    });
    if (now !== 'damaged')
      throw new CkvcError(
        'CKVC_REF_CONFLICT',
        `${kind} '${short}' is no longer damaged: ${now ? `it holds ${now.slice(0, 12)} now` : 'it no longer exists'}, changed while this command ran; re-run the command if it is still to go`,
        { ref: full, actual: now ?? null },
      );
    const raw = (await readFileIfExists(this.file(full))) ?? Buffer.alloc(0);
    const text = raw.subarray(0, 64).toString('utf8');
    const held = `${JSON.stringify(text)}${raw.length > 64 ? ` and ${raw.length - 64} more byte(s)` : ''}`;
    const log = await this.reflog(full);
    let lastKnown: ObjectId | undefined;
    for (let i = log.length - 1; i >= 0 && !lastKnown; i--) lastKnown = log[i]!.new ?? undefined;
    return { held, ...(lastKnown ? { lastKnown } : {}) };
  }

  /**
   * Runs fn holding the ref's lock and with no batch update running (§6.5): a batch's lock stands for the locks
   * of all its refs, so an update that finds it lets go of its own lock and waits for the batch to finish.
   */
  private async underLock(file: string, what: string, fn: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + Number(process.env.CKVC_LOCK_TIMEOUT_MS ?? 30_000);
    for (;;) {
      const lock = await acquireLock(`${file}.lock`, what, Math.max(0, deadline - Date.now()));
      try {
        if (!(await lockHeld(this.layout.refBatchLockFile))) return await fn();
      } finally {
        await lock.release();
      }
      await waitUntilFree(this.layout.refBatchLockFile, `${what} (a batch update of refs runs)`, deadline);
    }
  }

  private async ensureNoPathClash(full: string, short: string, kind: RefKind): Promise<void> {
    const parts = full.split('/');
    for (let i = 3; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      const st = await fs.stat(this.file(prefix)).catch(() => undefined);
      if (st?.isFile())
        throw new CkvcError(
          'CKVC_BAD_REF_NAME',
          `cannot create ${kind} '${short}': ${kind} '${prefix.slice(REF_PREFIX[kind].length)}' exists and a name cannot be both a ${kind} and a folder of ${plural(kind)}`,
          { name: short },
        );
    }
    await removeEmptyRefFolder(this.file(full));
    const st = await fs.stat(this.file(full)).catch(() => undefined);
    if (st?.isDirectory())
      throw new CkvcError(
        'CKVC_BAD_REF_NAME',
        `cannot create ${kind} '${short}': ${plural(kind)} named '${short}/...' exist`,
        { name: short },
      );
  }

  /** Every line of `full`'s reflog, its copies moved aside on a name clash included (reflog-paths.ts), by time. */
  async reflog(full: string): Promise<ReflogEntry[]> {
    const texts: string[] = [];
    for (const f of await reflogFiles(this.layout.logsDir, full)) {
      const raw = await readFileIfExists(f);
      if (raw) texts.push(raw.toString('utf8'));
    }
    const out: ReflogEntry[] = [];
    for (const line of texts.join('\n').split('\n')) {
      const m = /^([0-9a-f]{64}) ([0-9a-f]{64}) (\d+) (\S*)\t(.*)$/.exec(line);
      if (!m) continue; // a torn last line from a crash
      out.push({
        old: m[1] === ZERO_ID ? null : m[1]!,
        new: m[2] === ZERO_ID ? null : m[2]!,
        time: Number(m[3]),
        who: m[4]!,
        message: m[5]!,
      });
    }
    return out;
  }

  /**
   * Rewrites a reflog without the lines `drop` picks (gc's reflog expiry, FORMAT.md §6.3), under the ref's lock so
   * that no move's line is lost; a log left empty for a ref that no longer exists is removed. Returns the lines
   * dropped. `full` is the log's path below logs/ (the ref's full name).
   */
  async expireReflog(full: string, drop: (line: string) => boolean): Promise<number> {
    const file = this.file(full);
    const log = this.logFile(full);
    let dropped = 0;
    // The lock lives beside the ref; a folder made only for it goes again (a stray folder would block a branch).
    const made = await fs.mkdir(path.dirname(file), { recursive: true }).catch((e) => {
      throw ioError(e, 'create', path.dirname(file));
    });
    try {
      await this.underLock(file, `reflog ${full}`, async () => {
        const raw = await readFileIfExists(log);
        if (!raw) return;
        const lines = raw
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== '');
        const kept = lines.filter((l) => !drop(l));
        dropped = lines.length - kept.length;
        if (dropped === 0) return;
        if (kept.length === 0 && (await this.read(full)) === undefined) {
          await fs.rm(log, { force: true }).catch((e) => {
            throw ioError(e, 'delete', log);
          });
          await fsyncDir(path.dirname(log));
        } else {
          await writeFileDurable(log, kept.map((l) => `${l}\n`).join(''));
        }
      });
    } finally {
      for (let d = path.dirname(file); made && d.startsWith(made); d = path.dirname(d))
        await fs.rmdir(d).catch(() => {});
    }
    return dropped;
  }

  async readHead(): Promise<Head> {
    const raw = (await readFileIfExists(this.layout.headFile))?.toString('utf8').trim();
    if (raw?.startsWith('ref: refs/heads/')) return { kind: 'branch', branch: raw.slice('ref: refs/heads/'.length) };
    if (raw && isObjectId(raw)) return { kind: 'detached', id: raw };
    throw new CkvcError(
      'CKVC_CORRUPT_REF',
      `HEAD (${this.layout.headFile}) holds neither 'ref: refs/heads/NAME' nor an object ID; fix it with 'ckvc switch BRANCH'`,
      { ref: 'HEAD' },
    );
  }

  async writeHead(branch: string): Promise<void> {
    assertRefName(branch, 'branch');
    try {
      faultPoint('head.write');
    } catch (e) {
      throw ioError(e, 'write', this.layout.headFile);
    }
    await writeFileDurable(this.layout.headFile, `ref: refs/heads/${branch}\n`);
  }
}
