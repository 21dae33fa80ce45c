// `ckvc remote`, `push`, `fetch`, `pull REMOTE BRANCH` and `serve`.
import * as fs from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { CkvcError, isCkvcError } from '../core/errors.js';
import { isAncestor, storeParents } from '../store/ancestry.js';
import type { ObjectStore } from '../store/object-store.js';
import { REF_PREFIX } from '../store/ref-store.js';
import type { RefUpdate } from '../remote/bundle-import.js';
import { checkFilter, PromiseRecords } from '../store/promise-records.js';
import { DirectoryTransport } from '../remote/directory-transport.js';
import { listenOn } from '../remote/http-listen.js';
import { isSshUrl } from '../remote/ssh-url.js';
import type { StdioServeOptions } from '../remote/stdio-server.js';
import { normaliseUrl, RemoteConfig, type RemoteEntry } from '../remote/remote-config.js';
import { isS3Url } from '../remote/s3-location.js';
import { RemoteTokens } from '../remote/remote-tokens.js';
import { type DeletedRemoteRef, deleteRemoteRefs } from '../remote/remote-ref-delete.js';
import { unmatchedFilter } from '../remote/filter-coverage.js';
import { fetchRemote, push, type FetchResult, type Progress, type PushResult } from '../remote/sync.js';
import type { Transport } from '../remote/transport.js';
import { defaultAuthor } from './author.js';
import { recordMovedBranches } from './branch-summary.js';
import { parseDepth } from './bundle.js';
import { currentBranch } from './refs.js';

export interface RemoteAuth {
  /** A file holding the token; else the environment variable CKVC_TOKEN. */
  tokenFile?: string;
}

export async function readToken(tokenFile?: string): Promise<string | undefined> {
  if (tokenFile) {
    const t = (
      await fs.readFile(tokenFile, 'utf8').catch((e) => {
        throw new CkvcError(
          'CKVC_INPUT_NOT_FOUND',
          `token file ${tokenFile} cannot be read (${(e as NodeJS.ErrnoException).code})`,
          { path: tokenFile },
        );
      })
    ).trim();
    if (!t) throw new CkvcError('CKVC_BAD_ARGUMENT', `token file ${tokenFile} is empty`, { path: tokenFile });
    return t;
  }
  return process.env.CKVC_TOKEN || undefined;
}

export const remotes = (store: ObjectStore) => new RemoteConfig(store.layout);

export interface AddRemoteOptions {
  /** SSH remotes: the command that runs ckvc on the far side. */
  remoteCkvc?: string;
  /** s3 remotes: the user's promise that one writer at a time pushes (spec/S3.md). */
  singleWriter?: boolean;
  /** A file whose token is copied into the store (remote-tokens.json, mode 0600) for later pushes. */
  tokenFile?: string;
}

/** The token file is read first: one that cannot be read adds nothing. */
export async function addRemote(
  store: ObjectStore,
  name: string,
  url: string,
  opts: AddRemoteOptions = {},
): Promise<RemoteEntry & { tokenSaved?: true }> {
  if (opts.tokenFile && !/^https?:\/\//i.test(url)) {
    throw new CkvcError(
      'CKVC_USAGE',
      `--token-file is for HTTP remotes; ${JSON.stringify(url)} is not one ` + "(SSH logs in with ssh's own keys)",
      { url },
    );
  }
  const token = opts.tokenFile ? await readToken(opts.tokenFile) : undefined;
  const entry = await remotes(store).add(name, url, { remoteCkvc: opts.remoteCkvc, singleWriter: opts.singleWriter });
  if (token === undefined) return entry;
  await new RemoteTokens(store.layout).set(name, token);
  return { ...entry, tokenSaved: true };
}

/** `remote set NAME [URL]`: a new URL or settings for a remote, its name (and what partial fetches left) kept. */
export async function setRemote(
  store: ObjectStore,
  name: string,
  url: string | undefined,
  opts: AddRemoteOptions = {},
): Promise<RemoteEntry & { tokenSaved?: true }> {
  const current = await remotes(store).get(name);
  if (opts.tokenFile && !/^https?:\/\//i.test(url ?? current.url)) {
    throw new CkvcError(
      'CKVC_USAGE',
      `--token-file is for HTTP remotes; ${JSON.stringify(url ?? current.url)} is not one`,
      {
        url: url ?? current.url,
      },
    );
  }
  if (url === undefined && opts.singleWriter === undefined && opts.remoteCkvc === undefined && !opts.tokenFile)
    throw new CkvcError(
      'CKVC_USAGE',
      `say what to change: ckvc remote set ${name} [URL] [--single-writer | --no-single-writer] [--remote-ckvc CMD] [--token-file F]`,
      { name },
    );
  const token = opts.tokenFile ? await readToken(opts.tokenFile) : undefined;
  const entry = await remotes(store).set(name, url, { remoteCkvc: opts.remoteCkvc, singleWriter: opts.singleWriter });
  // A saved token belongs to the server it was given for.
  if (token !== undefined) await new RemoteTokens(store.layout).set(name, token);
  else if (url !== undefined && normaliseUrl(url) !== current.url)
    await new RemoteTokens(store.layout).set(name, undefined);
  return token === undefined ? entry : { ...entry, tokenSaved: true };
}

export async function removeRemote(
  store: ObjectStore,
  name: string,
  opts: { force?: boolean } = {},
): Promise<RemoteEntry> {
  if (!opts.force) await refuseWhilePromised(store, name);
  const removed = await remotes(store).remove(name);
  await new RemoteTokens(store.layout).set(name, undefined);
  return removed;
}

/**
 * A remote that partial fetches left data on is the only way to that data (FORMAT.md §13.2): removing it would
 * leave checkout of those commits failing with no remote to ask, so it takes --force.
 */
async function refuseWhilePromised(store: ObjectStore, name: string): Promise<void> {
  const commits = [...(await new PromiseRecords(store.layout).all()).values()]
    .filter((r) => r.remote === name)
    .map((r) => r.commit);
  if (commits.length === 0) return;
  throw new CkvcError(
    'CKVC_NOT_FETCHED',
    `remote '${name}' still holds tensor data that partial fetches left out of ${commits.length} commit(s) ` +
      `(first: ${commits[0]!.slice(0, 12)}); nothing was changed. Run 'ckvc fetch ${name} --no-filter' ` +
      `to fetch the rest first, or 'ckvc remote remove ${name} --force' to remove it anyway (those tensors ` +
      'then cannot be read until a remote that has them is added under this name)',
    { remote: name, commits },
  );
}

export async function openTransport(
  store: ObjectStore,
  name: string,
  auth: RemoteAuth,
): Promise<{ remote: RemoteEntry; t: Transport }> {
  const remote = await remotes(store).get(name);
  const who = defaultAuthor();
  const token = async () => (await readToken(auth.tokenFile)) ?? (await new RemoteTokens(store.layout).get(name));
  const t = isS3Url(remote.url)
    ? await openS3(store, remote)
    : // The network transports (node:http, https, tls) load only when a remote needs them: every command pays for
      // what it loads at start-up.
      /^https?:\/\//.test(remote.url)
      ? new (await import('../remote/http-transport.js')).HttpTransport(remote.url, await token(), who)
      : isSshUrl(remote.url)
        ? await (await import('../remote/ssh-transport.js')).openSshTransport(remote, who)
        : await DirectoryTransport.open(remote.url, who).catch((e) => {
            // The remote's folder moved or was unmounted: advising `ckvc init` there would make an empty remote.
            if (!isCkvcError(e, 'CKVC_NO_STORE')) throw e;
            throw new CkvcError(
              'CKVC_REMOTE',
              `remote '${name}' is the folder ${remote.url}, which holds no ckvc store now (moved, renamed or not mounted?); if it moved, 'ckvc remote set ${name} NEW_PATH' points the name there`,
              { remote: name, url: remote.url },
            );
          });
  return { remote, t };
}

/** The S3 transport and the SDK it uses are loaded only when an s3 remote is used (start-up does not pay). */
async function openS3(store: ObjectStore, remote: RemoteEntry): Promise<Transport> {
  const { S3Transport } = await import('../remote/s3-transport.js');
  return S3Transport.open(remote.url, store, {
    name: remote.name,
    singleWriter: remote.singleWriter,
    conditionalWrites: remote.conditionalWrites,
    remember: (conditionalWrites) => remotes(store).remember(remote.name, { conditionalWrites }),
  });
}

export interface PushOptions extends RemoteAuth {
  remote: string;
  /** Branch or tag names (default: the current branch). */
  refs?: string[];
  force?: boolean;
  progress?: Progress;
  /** Only the last N commits of each ref: a shallow push (PROTOCOL.md §4); checked here, as typed. */
  depth?: number | string;
}

export async function pushToRemote(store: ObjectStore, opts: PushOptions): Promise<PushResult & { remote: string }> {
  const names = opts.refs?.length ? [...new Set(opts.refs)] : [await currentBranch(store)];
  const refs: { local: string; remote: string }[] = [];
  for (const n of names) {
    const full = (await store.refs.read(REF_PREFIX.branch + n).catch(() => undefined))
      ? REF_PREFIX.branch + n
      : (await store.refs.read(REF_PREFIX.tag + n).catch(() => undefined))
        ? REF_PREFIX.tag + n
        : undefined;
    if (!full) throw new CkvcError('CKVC_UNKNOWN_REVISION', `no branch or tag named '${n}' to push`, { name: n });
    refs.push({ local: full, remote: full });
  }
  const depth = parseDepth(opts.depth);
  const url = (await remotes(store).get(opts.remote)).url;
  if (depth && isS3Url(url))
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `push --depth is not supported for S3 remotes (${url}): nothing there records where history stops; ` +
        'nothing was sent: push the full history, or use a folder, HTTP or SSH remote',
      { url },
    );
  const { t } = await openTransport(store, opts.remote, opts);
  try {
    const pushed = await push(store, t, opts.remote, refs, Boolean(opts.force), opts.progress, depth);
    return { ...pushed, remote: opts.remote };
  } finally {
    await t.close();
  }
}

/**
 * `push REMOTE --delete NAME...`: deletes branches or tags on the remote by compare-and-swap against what its refs
 * said a moment before; the remote keeps their reflogs (PROTOCOL.md §4), here the remote-tracking branches go.
 */
export async function deleteOnRemote(
  store: ObjectStore,
  opts: RemoteAuth & { remote: string; refs: string[] },
): Promise<{ remote: string; deleted: DeletedRemoteRef[]; warnings: { code: string; message: string }[] }> {
  if (!opts.refs.length)
    throw new CkvcError('CKVC_USAGE', 'push --delete needs the names of the branches or tags to delete', {});
  const { t } = await openTransport(store, opts.remote, opts);
  try {
    return { remote: opts.remote, ...(await deleteRemoteRefs(store, t, opts.remote, opts.refs)) };
  } finally {
    await t.close();
  }
}

export interface FetchOptions extends RemoteAuth {
  remote: string;
  progress?: Progress;
  /**
   * Tensor globs ('!' excludes): fetch only these tensors' data, the rest promised (FORMAT.md §13.2), and keep
   * them as the remote's filter. Absent: the remote's kept filter, if any. false: everything, the filter dropped.
   */
  filter?: string[] | false;
  /** Keep `filter` as the remote's (default); `checkout REMOTE/BRANCH --tensor` fetches with its globs once. */
  keepFilter?: boolean;
  /** Drop remote-tracking branches whose branch the remote no longer has. */
  prune?: boolean;
  /**
   * Only these branches of the remote (git's `fetch origin main`), no tags: what a researcher fetches from a store
   * of many runs. One the remote lacks: nothing is fetched.
   */
  branches?: string[];
  /** The fetch is for this branch of the remote (`pull`, `checkout REMOTE/BRANCH`): only it is fetched. */
  branch?: string;
}

export async function fetchFromRemote(
  store: ObjectStore,
  opts: FetchOptions,
): Promise<FetchResult & { remote: string; filterRemembered?: string[] }> {
  const given = opts.filter ? checkFilter(opts.filter, 'fetch --filter') : undefined;
  const { remote, t } = await openTransport(store, opts.remote, opts);
  try {
    // A store kept partial stays so: git keeps a partial clone's filter the same way (remote.NAME.partialclonefilter).
    // Checked only when used: --no-filter drops even a kept filter that no longer passes.
    const kept =
      opts.filter === false || given || !remote.filter
        ? remote.filter
        : checkFilter(remote.filter, `the filter kept for remote '${opts.remote}'`);
    const filter = opts.filter === false ? undefined : (given ?? kept);
    const fetched = await fetchRemote(store, t, opts.remote, opts.progress, {
      filter,
      prune: opts.prune,
      branches: opts.branches ?? (opts.branch !== undefined ? [opts.branch] : undefined),
    });
    if (given && fetched.partial) {
      const tips = [...new Set(fetched.refs.map((u) => u.new))];
      const unmatched = await unmatchedFilter(store, tips, given, opts.remote);
      if (unmatched) fetched.warnings.push({ code: 'CKVC_PATH_NOT_FOUND', message: unmatched });
    }
    const keep = opts.keepFilter === false ? kept : opts.filter === false ? undefined : filter;
    if (JSON.stringify(keep) !== JSON.stringify(kept)) await remotes(store).remember(opts.remote, { filter: keep });
    return { ...fetched, remote: opts.remote, ...(keep ? { filterRemembered: keep } : {}) };
  } finally {
    await t.close();
  }
}

export interface PullRemoteOptions extends FetchOptions {
  branch: string;
}

/** Fetch, then fast-forward (or create) the local branch to the remote's. */
export async function pullFromRemote(
  store: ObjectStore,
  opts: PullRemoteOptions,
): Promise<FetchResult & { remote: string; branch: RefUpdate }> {
  const f = await fetchFromRemote(store, opts);
  const tracking = `${REF_PREFIX.remote}${opts.remote}/${opts.branch}`;
  const theirs = await store.refs.read(tracking);
  if (!theirs)
    throw new CkvcError('CKVC_UNKNOWN_REVISION', `remote '${opts.remote}' has no branch '${opts.branch}'`, {
      remote: opts.remote,
      branch: opts.branch,
    });
  const local = REF_PREFIX.branch + opts.branch;
  const cur = (await store.refs.read(local)) ?? null;
  if (cur === theirs)
    return { ...f, branch: { name: local, old: cur, new: theirs, forced: false, skipped: 'unchanged' } };
  // Local commits made on top of what was pulled before: nothing to bring in (git: "Already up to date").
  if (cur !== null && (await isAncestor(storeParents(store), theirs, cur)))
    return { ...f, branch: { name: local, old: cur, new: theirs, forced: false, skipped: 'behind' } };
  if (cur !== null && !(await isAncestor(storeParents(store), cur, theirs))) {
    throw new CkvcError(
      'CKVC_NON_FAST_FORWARD',
      `branch '${opts.branch}' (${cur.slice(0, 12)}) and ${opts.remote}/${opts.branch} (${theirs.slice(0, 12)}) have diverged; the fetched history is in ${opts.remote}/${opts.branch}: compare with 'ckvc diff', then 'ckvc branch' a new name for it`,
      { branch: opts.branch, local: cur, remote: theirs },
    );
  }
  await store.refs.update(local, theirs, {
    expect: cur,
    who: defaultAuthor(),
    message: `pull: ${opts.remote}/${opts.branch}`,
  });
  await recordMovedBranches(store, [{ name: local, new: theirs }]);
  return { ...f, branch: { name: local, old: cur, new: theirs, forced: false } };
}

export interface ServeOptions {
  store: string;
  host?: string;
  port?: number;
  tokenFile?: string;
  readOnly?: boolean;
  log?: (line: string) => void;
  /** Makes the handler of every request outside /v1/ (the CLI passes the web page, src/ui), given the server's
   * address and token. */
  page?: (access: { host: string; token?: string }) => (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}

export async function serve(opts: ServeOptions): Promise<{ server: Server; url: string }> {
  const token = opts.tokenFile ? await readToken(opts.tokenFile) : undefined;
  const host = opts.host ?? '127.0.0.1';
  const page = opts.page?.({ host, token });
  const { createServer } = await import('../remote/http-server.js');
  const server = createServer({
    store: opts.store,
    host,
    port: opts.port ?? 0,
    token,
    readOnly: opts.readOnly,
    log: opts.log,
    page,
  });
  await listenOn(server, opts.port ?? 0, host);
  const addr = server.address() as import('node:net').AddressInfo;
  return { server, url: `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}/` };
}

/** `ckvc serve --stdio`: one HTTP connection on stdin/stdout (spec/PROTOCOL.md §5), until the client ends it. */
export async function serveOnStdio(opts: StdioServeOptions): Promise<void> {
  const { serveStdio } = await import('../remote/stdio-server.js');
  return serveStdio(opts, process.stdin, process.stdout);
}
