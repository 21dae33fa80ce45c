// Many ref moves as one batch (spec/FORMAT.md §6.5). One store-wide lock (locks/refs.lock) stands for the
// per-ref locks of §6.2: a single-ref update takes its ref's lock and then looks for the batch lock; a batch
// takes the batch lock and then waits out the ref locks of its refs; each side publishes itself before looking
// for the other, so they never both go ahead. Every check (names, folder clashes, compare-and-swap) is made
// before anything is written, so a refused batch changes nothing. Then each step of §6.2 is done for every ref
// before the next step starts, many at a time: reflog lines and new values are fsynced a wave at a time
// (concurrent fsyncs share the disk's journal commits), each folder is fsynced once. One move after another
// took three serial fsyncs and two lock files per ref: 100,000 refs took a quarter of an hour.
import * as fsc from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { CkvcError } from '../core/errors.js';
import { isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import { fsyncDir, ioError } from './durable-fs.js';
import { faultPoint, type FaultStep } from './fault-injection.js';
import { acquireLock, waitUntilFree } from './lock-file.js';
import { randomHex } from './random-hex.js';
import { holdsAnyFile, moveAsideClashingLogs, removeEmptyRefFolder } from './reflog-paths.js';

export interface RefMove {
  /** Full ref name (refs/heads/NAME...). */
  name: string;
  /** The new value; null deletes the ref. */
  next: ObjectId | null;
  /** Compare-and-swap: the value the ref must hold (null: must not exist; undefined: any value). */
  expect?: ObjectId | null;
  /** The reflog message of this move (default: the batch's). */
  message?: string;
}

/** What the batch needs of the ref store. */
export interface BatchContext {
  file(full: string): string;
  logFile(full: string): string;
  logsDir: string;
  batchLock: string;
  /** The value of a ref (undefined: absent). */
  read(full: string): Promise<ObjectId | undefined>;
  /** Why `full` cannot be a ref (an invalid name), or undefined. */
  nameProblem(full: string): CkvcError | undefined;
}

/** Operations in flight at once: enough to keep the disk's queue full, few enough for the fd limit. */
const WIDTH = 64;
/** Refs whose reflog line and new value are written and then fsynced together (two open files each). */
const WAVE = 512;
const ZERO_ID = '0'.repeat(64);

// The callback API on plain descriptors: a FileHandle per file costs more than the write it makes.
const writeString = promisify(fsc.write) as (fd: number, s: string) => Promise<unknown>;
const fsp = {
  open: promisify(fsc.open),
  fstat: promisify(fsc.fstat),
  write: writeString,
  fsync: promisify(fsc.fsync),
  close: promisify(fsc.close),
  rename: promisify(fsc.rename),
};

/** Runs fn over items, `width` at a time; stops starting new ones after the first failure, which it rethrows. */
export async function eachLimit<T>(
  items: readonly T[],
  fn: (item: T, i: number) => Promise<void>,
  width = WIDTH,
): Promise<void> {
  let next = 0;
  let failure: { e: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (e) {
        failure ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  if (failure) throw failure.e;
}

function fault(step: FaultStep, what: string, p: string): void {
  try {
    faultPoint(step);
  } catch (e) {
    throw ioError(e, what, p);
  }
}

/** Entries of a folder: name -> is a folder (an absent folder has none). */
async function listDir(dir: string): Promise<Map<string, boolean>> {
  const out = new Map<string, boolean>();
  try {
    for (const e of await fs.readdir(dir, { withFileTypes: true })) out.set(e.name, e.isDirectory());
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(e, 'list', dir);
  }
  return out;
}

/** Takes back a reflog line whose move did not happen (§6.2 step 4); a reflog the batch created goes with it. */
async function truncateBack(u: { log: string; before: number | undefined }): Promise<void> {
  if (u.before === undefined) return fs.rm(u.log, { force: true });
  const h = await fs.open(u.log, 'r+');
  try {
    await h.truncate(u.before);
    await h.sync();
  } finally {
    await h.close();
  }
}

/** A ref cannot be named like a folder of refs, in the store or within the batch; no ref is named twice. */
export async function checkNames(
  ctx: Pick<BatchContext, 'file' | 'nameProblem'>,
  moves: readonly RefMove[],
): Promise<void> {
  const names = new Set<string>();
  for (const m of moves) {
    const problem = ctx.nameProblem(m.name);
    if (problem) throw problem;
    if (names.has(m.name))
      throw new CkvcError('CKVC_BAD_ARGUMENT', `ref ${m.name} is moved twice in one update; name it once`, {
        ref: m.name,
      });
    names.add(m.name);
  }
  const prefixes = new Map<string, string>(); // folder prefix -> a ref below it
  for (const m of moves) {
    if (m.next === null) continue;
    const parts = m.name.split('/');
    for (let i = 3; i < parts.length; i++) prefixes.set(parts.slice(0, i).join('/'), m.name);
  }
  for (const [prefix, name] of prefixes) {
    const isFile =
      names.has(prefix) ||
      (await fs.stat(ctx.file(prefix)).then(
        (s) => s.isFile(),
        () => false,
      ));
    if (isFile)
      throw new CkvcError(
        'CKVC_BAD_REF_NAME',
        `cannot create ${name}: ${prefix} exists, and a name cannot be both a ref and a folder of refs; nothing was changed`,
        { ref: name, clash: prefix },
      );
  }
  const listings = new Map<string, Map<string, boolean>>();
  for (const m of moves) {
    const file = ctx.file(m.name);
    const dir = path.dirname(file);
    if (!listings.has(dir)) listings.set(dir, await listDir(dir));
    // A folder of empty folders is what deleted refs leave: the batch removes it (reflog-paths.ts).
    if (listings.get(dir)!.get(path.basename(file)) === true && (await holdsAnyFile(file))) throw folderClash(m.name);
  }
}

const folderClash = (name: string) =>
  new CkvcError(
    'CKVC_BAD_REF_NAME',
    `cannot create ${name}: refs named '${name}/...' exist, and a name cannot be both a ref and a folder of refs; nothing was changed`,
    { ref: name },
  );

/**
 * Moves every ref of `moves`, or none when a check fails. A crash midway (or an I/O error while renaming,
 * reported as CKVC_IO with `data.moved` and `data.notMoved`) can leave some moved and some not: each one
 * holds its old or its new value, and running the command again completes it.
 */
export async function applyRefBatch(
  ctx: BatchContext,
  moves: readonly RefMove[],
  opts: { who: string; message: string },
): Promise<void> {
  if (!moves.length) return;
  // A ref file holds an object ID or nothing: whatever a caller passes (received from elsewhere, perhaps) must be one.
  const notId = moves.find((m) => m.next !== null && !isObjectId(m.next));
  if (notId)
    throw new CkvcError(
      'CKVC_INTERNAL',
      `refusing to set ${notId.name} to ${JSON.stringify(String(notId.next).slice(0, 80))}: not an object ID`,
      {
        ref: notId.name,
      },
    );
  await checkNames(ctx, moves);
  const folders = (f: (full: string) => string, which = moves) => [
    ...new Set(which.map((m) => path.dirname(f(m.name)))),
  ];
  const mkdirs = async (dirs: string[]) => {
    for (const d of dirs) {
      await fs.mkdir(d, { recursive: true }).catch((e) => {
        throw ioError(e, 'create the folder', d);
      });
    }
  };
  await mkdirs([path.dirname(ctx.batchLock), ...folders(ctx.file)]);
  const timeout = Number(process.env.CKVC_LOCK_TIMEOUT_MS ?? 30_000);
  const lock = await acquireLock(ctx.batchLock, 'the refs (a batch update)', timeout);
  const undo: ({ log: string; before: number | undefined } | undefined)[] = [];
  const temps: (string | undefined)[] = [];
  const cur: (ObjectId | undefined)[] = new Array(moves.length);
  let renaming = false;
  const moved: boolean[] = [];
  try {
    // Folders of empty folders that deleted refs left where a new ref goes (checkNames let them by).
    for (const m of moves) if (m.next !== null) await removeEmptyRefFolder(ctx.file(m.name));
    // One listing per folder says which refs exist, which names are folders and which refs are locked.
    const refDirs = new Map<string, Map<string, boolean>>();
    const logDirs = new Map<string, Map<string, boolean>>();
    await eachLimit(folders(ctx.file), async (d) => {
      refDirs.set(d, await listDir(d));
    });
    const deadline = Date.now() + timeout;
    await eachLimit(moves, async (m, i) => {
      const file = ctx.file(m.name);
      const entries = refDirs.get(path.dirname(file))!;
      const base = path.basename(file);
      if (entries.has(`${base}.lock`)) await waitUntilFree(`${file}.lock`, `ref ${m.name}`, deadline);
      if (entries.get(base) === true) throw folderClash(m.name);
      if (entries.has(base)) cur[i] = await ctx.read(m.name);
    });
    fault('ref.lock', 'update refs under', path.dirname(ctx.file(moves[0]!.name)));
    const conflicts = moves.filter((m, i) => m.expect !== undefined && (cur[i] ?? null) !== m.expect);
    if (conflicts.length) {
      const m = conflicts[0]!;
      const c = cur[moves.indexOf(m)];
      const what =
        m.expect === null
          ? `${m.name} already exists`
          : `${m.name} moved to ${c?.slice(0, 12) ?? '(deleted)'} while this command ran (expected ${m.expect!.slice(0, 12)})`;
      throw new CkvcError(
        'CKVC_REF_CONFLICT',
        `${what}${conflicts.length > 1 ? ` (and ${conflicts.length - 1} more ref(s))` : ''}; nothing was changed: re-run the command against the current tips`,
        {
          ref: m.name,
          expected: m.expect,
          actual: c ?? null,
          conflicts: conflicts.map((x) => x.name),
        },
      );
    }
    // Only once the batch will go ahead: a deleted ref's reflog standing where a new ref's log goes is moved aside
    // (reflog-paths.ts), so that a refused batch changes nothing.
    for (const m of moves) if (m.next !== null) await moveAsideClashingLogs(ctx.logsDir, m.name);
    await mkdirs(folders(ctx.logFile));
    await eachLimit(folders(ctx.logFile), async (d) => {
      logDirs.set(d, await listDir(d));
    });
    // Reflog lines and new values, a wave at a time: no ref is renamed before every line is durable (§6.2).
    const who = opts.who.replace(/\s+/g, '_');
    const tmpTag = `${process.pid}.${randomHex(4)}`;
    for (let at = 0; at < moves.length; at += WAVE) {
      const fds: number[] = [];
      try {
        await eachLimit(moves.slice(at, at + WAVE), async (m, k) => {
          const i = at + k;
          const log = ctx.logFile(m.name);
          try {
            faultPoint('reflog.append');
            const fd = await fsp.open(log, 'a', 0o644);
            fds.push(fd);
            undo[i] = {
              log,
              before: logDirs.get(path.dirname(log))!.has(path.basename(log)) ? (await fsp.fstat(fd)).size : undefined,
            };
            await fsp.write(
              fd,
              `${cur[i] ?? ZERO_ID} ${m.next ?? ZERO_ID} ${Date.now()} ${who}\t${(m.message ?? opts.message).replace(/[\r\n\t]+/g, ' ')}\n`,
            );
          } catch (e) {
            throw ioError(e, 'append to', log);
          }
          if (m.next === null) return;
          const file = ctx.file(m.name);
          const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${tmpTag}.${i}.tmp`);
          try {
            faultPoint('ref.tmp');
            const fd = await fsp.open(tmp, 'wx', 0o644);
            fds.push(fd);
            temps[i] = tmp;
            await fsp.write(fd, `${m.next}\n`);
            faultPoint('ref.fsync');
          } catch (e) {
            throw ioError(e, 'write', file);
          }
        });
        await eachLimit(
          fds,
          (fd) =>
            fsp.fsync(fd).catch((e) => {
              throw ioError(e, 'sync the reflogs and refs under', path.dirname(ctx.file(moves[at]!.name)));
            }),
          WAVE,
        );
      } finally {
        await eachLimit(fds, (fd) => fsp.close(fd).catch(() => {}), WAVE);
      }
    }
    await eachLimit(folders(ctx.logFile), (d) => fsyncDir(d));
    // From the first rename on, refs move one by one: a failure now is reported per ref.
    renaming = true;
    fault('ref.rename', 'rename refs into place under', path.dirname(ctx.file(moves[0]!.name)));
    await eachLimit(moves, async (m, i) => {
      const file = ctx.file(m.name);
      try {
        if (m.next === null) await fs.rm(file, { force: true });
        else await fsp.rename(temps[i]!, file);
      } catch (e) {
        throw ioError(e, m.next === null ? 'delete' : 'rename into place', file);
      }
      moved[i] = true;
    });
    await eachLimit(folders(ctx.file), async (d) => {
      fault('ref.dirsync', 'sync the folder', d);
      await fsyncDir(d);
    });
    fault('ref.done', 'update refs under', path.dirname(ctx.file(moves[0]!.name)));
  } catch (e) {
    await eachLimit(moves, async (m, i) => {
      if (moved[i]) return;
      if (temps[i]) await fs.rm(temps[i]!, { force: true }).catch(() => {});
      if (undo[i] && (!renaming || (await ctx.read(m.name).catch(() => 'unknown')) === cur[i]))
        await truncateBack(undo[i]!).catch(() => {});
    });
    throw renaming ? partial(e, moves, moved) : e;
  } finally {
    await lock.release();
  }
}

function partial(e: unknown, moves: readonly RefMove[], moved: boolean[]): CkvcError {
  const ok = moves.filter((_, i) => moved[i]).map((m) => m.name);
  const not = moves.filter((_, i) => !moved[i]).map((m) => m.name);
  const list = (l: string[]) => `${l.slice(0, 5).join(', ')}${l.length > 5 ? ', ...' : ''}`;
  const cause = e instanceof CkvcError ? e.message : String(e);
  const what = not.length
    ? `${ok.length} of ${moves.length} ref(s) had moved before the failure${ok.length ? ` (${list(ok)})` : ''}, ${not.length} did not (${list(not)}); fix the cause and run the command again to move the rest`
    : `all ${moves.length} ref(s) moved, but their folder may not be durable; fix the cause and check them`;
  return new CkvcError(
    e instanceof CkvcError ? e.code : 'CKVC_IO',
    `${cause}; ${what}`,
    { ...(e instanceof CkvcError ? e.data : {}), moved: ok, notMoved: not },
    { cause: e },
  );
}
