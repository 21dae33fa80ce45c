// Reading data a partial fetch left out (spec/FORMAT.md §13.2): checkout, `checkout --tensor` and `cat` fetch the
// missing chunks of what they are about to read from the remote the promise names (received like any fetch:
// quarantine, every object re-hashed), then read. Without that remote the error says what is missing, from
// where, and how to fetch it; nothing in the store changes.
import { bytes } from '../core/byte-size.js';
import { CkvcError, ERROR_CODES, EXIT, isCkvcError } from '../core/errors.js';
import { parseRevision } from '../core/revision-syntax.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { PromiseRecords } from '../store/promise-records.js';
import { receiveObjects } from '../remote/object-receiver.js';
import { filterWording, missingTensorChunks, settlePromises } from '../remote/partial-store.js';
import { fetchFromRemote, openTransport, remotes } from './remote.js';
import type { FetchResult } from '../remote/sync.js';

/** Errors that mean "the remote cannot supply it now" rather than "what it sent is damaged". */
function unavailable(e: unknown): e is CkvcError {
  if (!isCkvcError(e)) return false;
  const exit = ERROR_CODES[e.code].exit;
  return (
    exit === EXIT.REMOTE_REFUSED ||
    exit === EXIT.REMOTE_FAILED ||
    e.code === 'CKVC_UNKNOWN_REMOTE' ||
    e.code === 'CKVC_NO_STORE' ||
    e.code === 'CKVC_MISSING_OBJECT' ||
    e.code === 'CKVC_UNKNOWN_REVISION'
  );
}

/**
 * Makes sure the data of `commit`'s tensors that `wanted` selects is here, fetching what a partial fetch left
 * out. `what` names the command for the error. Returns the chunks fetched.
 */
export async function fetchLeftOut(
  store: ObjectStore,
  commit: ObjectId,
  wanted: (path: string, names: readonly string[]) => boolean,
  what: string,
): Promise<number> {
  const rec = await new PromiseRecords(store.layout).get(commit);
  if (!rec) return 0;
  const { chunks, tensors } = await missingTensorChunks(store, commit, wanted);
  if (!chunks.length) return 0;
  try {
    const { t } = await openTransport(store, rec.remote, {});
    try {
      const got = await receiveObjects(store, t, chunks);
      await settlePromises(store, [commit]);
      // S3 has no server to cut packs: what came over the network may exceed what was kept (spec/S3.md §3).
      const down = t.bytesDownloaded?.() ?? 0;
      const downloaded = down > got.bytes ? `, ${bytes(down)} downloaded` : '';
      store.notify?.(
        `${what}: fetched ${tensors.length} tensor(s) of commit ${commit.slice(0, 12)} (${chunks.length} chunk(s), ${bytes(got.bytes)}${downloaded}) from remote '${rec.remote}', where a partial fetch had left them`,
      );
      return got.objects;
    } finally {
      await t.close();
    }
  } catch (e) {
    if (!unavailable(e)) throw e;
    const first = tensors[0]!;
    // The remote answered that it lacks them (a branch deleted and collected there): no later fetch brings them.
    const gone = e.code === 'CKVC_MISSING_OBJECT' || e.code === 'CKVC_UNKNOWN_REVISION';
    const why = gone
      ? `remote '${rec.remote}' no longer holds them (deleted or collected there; it answered: ${e.message}); nothing ` +
        'was changed: fetch them from a remote that still has them, or take only tensors that are here'
      : `remote '${rec.remote || '(unknown)'}' could not supply them now: ${e.message}; nothing was changed: ` +
        `run 'ckvc fetch ${rec.remote} --no-filter' once it is reachable, or take only tensors that are here`;
    throw new CkvcError(
      'CKVC_NOT_FETCHED',
      `${what} needs ${tensors.length} tensor(s) of commit ${commit.slice(0, 12)} (e.g. '${first.name}' of ` +
        `${first.path}, ${chunks.length} chunk(s)) that a partial fetch left out (only ${filterWording(rec)} ` +
        `were fetched); ${why}`,
      { commit, remote: rec.remote, tensors, chunks: chunks.length, cause: e.code },
    );
  }
}

/** `checkout REMOTE/BRANCH --tensor GLOB`: the remote named, if REV starts with the name of one. */
async function remoteOf(store: ObjectStore, rev: string): Promise<string | undefined> {
  const slash = rev.indexOf('/');
  if (slash <= 0) return undefined;
  const name = rev.slice(0, slash);
  return (await remotes(store).list()).some((r) => r.name === name) ? name : undefined;
}

export interface RemoteCheckoutFetch {
  remote: string;
  /** The fetch's result; absent when it failed and the ref was already here (`warning` says why). */
  result?: FetchResult;
  warning?: string;
}

/**
 * Before `checkout REMOTE/BRANCH --tensor GLOB...`: fetch REMOTE with those globs as the filter, so only the
 * selected tensors' data travels. When the remote cannot be reached and REMOTE/BRANCH is already here, the
 * checkout goes on from what is here (with a warning); otherwise the fetch's error stands.
 */
export async function fetchForCheckout(
  store: ObjectStore,
  rev: string,
  tensors: string[],
): Promise<RemoteCheckoutFetch | undefined> {
  const remote = await remoteOf(store, rev);
  if (!remote || !tensors.length) return undefined;
  // REMOTE/BRANCH~2 and the like: the branch is what the remote must have (else nothing is fetched).
  const branch = parseRevision(rev).base.slice(remote.length + 1);
  try {
    return { remote, result: await fetchFromRemote(store, { remote, filter: tensors, keepFilter: false, branch }) };
  } catch (e) {
    const here = await store.refs.read(`refs/remotes/${rev}`).catch(() => undefined);
    if (!here || !unavailable(e)) throw e;
    return { remote, warning: `could not fetch from ${remote} (${e.message}); checking out ${rev} as last fetched` };
  }
}
