// Named remotes of a store (spec/PROTOCOL.md §1): remotes.json, replaced whole under a lock.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import { refNameProblem } from '../core/ref-name.js';
import { isS3Url, parseS3Url, s3Url } from './s3-location.js';
import { readFileIfExists, writeFileDurable } from '../store/durable-fs.js';
import { withLock } from '../store/lock-file.js';
import type { StoreLayout } from '../store/store-layout.js';
import { formatSshUrl, isSshUrl, looksLikeScp, parseSshUrl } from './ssh-url.js';

export interface RemoteEntry {
  name: string;
  url: string;
  /** s3 remotes (spec/S3.md §1): the user's promise of one writer at a time, and the conditional-write probe's answer. */
  singleWriter?: boolean;
  conditionalWrites?: boolean;
  /** SSH remotes: the command the far side runs instead of `ckvc` (spec/PROTOCOL.md §5). */
  remoteCkvc?: string;
  /** The tensor filter of the last filtered fetch, kept for later fetches and pulls (spec/PROTOCOL.md §1). */
  filter?: string[];
}

/** The fields kept besides the URL; a value of another type is dropped when read. */
const FLAGS = ['singleWriter', 'conditionalWrites'] as const;

function entryOf(name: string, v: Record<string, unknown>): RemoteEntry {
  const e: RemoteEntry = { name, url: v.url as string };
  for (const f of FLAGS) if (typeof v[f] === 'boolean') e[f] = v[f] as boolean;
  if (typeof v.remoteCkvc === 'string') e.remoteCkvc = v.remoteCkvc;
  if (Array.isArray(v.filter) && v.filter.length > 0 && v.filter.every((g) => typeof g === 'string'))
    e.filter = v.filter as string[];
  return e;
}

export function checkRemoteName(name: string): void {
  // __proto__ as a key of the JSON files that hold remotes by name is the prototype's setter, not a property: its
  // saved token was dropped without a word.
  const problem =
    refNameProblem(name) ??
    (name.includes('/') ? "contains '/'" : name === '__proto__' ? 'is reserved (a JavaScript object key)' : undefined);
  if (problem)
    throw new CkvcError(
      'CKVC_BAD_REF_NAME',
      `invalid remote name ${JSON.stringify(name)}: it ${problem}; use letters, digits, '-', '_' and '.'`,
      { name },
    );
}

/**
 * An address that looks like scp's `host:path` means SSH, as in git; a folder of that name must be written so that
 * it does not (./user@host:path), and one that exists is refused rather than silently taken for a host.
 */
function normaliseSshUrl(url: string, cwd: string): string {
  if (!isSshUrl(url) && fs.existsSync(path.resolve(cwd, url))) {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `remote URL ${JSON.stringify(url)} reads as an SSH address (host:path), ` +
        `but a folder of that name exists here; write ./${url} for the folder, or ssh://HOST/PATH for SSH`,
      { url },
    );
  }
  return formatSshUrl(parseSshUrl(url));
}

/**
 * A URL is ssh://[user@]host[:port]/path or [user@]host:path (SSH), http(s)://host:port/, s3://BUCKET/PREFIX or a
 * folder (another store, or a folder holding .ckvc).
 */
export function normaliseUrl(url: string, cwd = process.cwd()): string {
  if (isS3Url(url)) return s3Url(parseS3Url(url));
  if (/^https?:\/\//i.test(url)) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new CkvcError(
        'CKVC_BAD_ARGUMENT',
        `remote URL ${JSON.stringify(url)} does not parse; use http://host:port/ or a folder`,
        { url },
      );
    }
    return u.toString().replace(/\/?$/, '/');
  }
  if (isSshUrl(url) || looksLikeScp(url)) return normaliseSshUrl(url, cwd);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `remote URL ${JSON.stringify(url)}: only ssh://, http(s)://, s3:// and folders are supported`,
      { url },
    );
  }
  return path.resolve(cwd, url);
}

/** `--remote-ckvc`: only for SSH remotes, one line of printable text (the far shell runs it as written). */
function checkRemoteCkvc(cmd: string, url: string): string {
  if (!isSshUrl(url)) {
    throw new CkvcError('CKVC_USAGE', `--remote-ckvc is for SSH remotes only; ${JSON.stringify(url)} is not one`, {
      url,
    });
  }
  // eslint-disable-next-line no-control-regex
  if (!cmd.trim() || /[\u0000-\u001f\u007f]/.test(cmd)) {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `--remote-ckvc ${JSON.stringify(cmd)} must be a non-empty command on one line`,
      { cmd },
    );
  }
  return cmd;
}

/** What `remote add` and `remote set` take besides the URL. */
export interface RemoteSettings {
  /** true sets the s3 single-writer promise, false takes it back. */
  singleWriter?: boolean;
  remoteCkvc?: string;
}

/** `entry` with the settings applied, each checked against its URL's kind. */
function settled(entry: RemoteEntry, opts: RemoteSettings): RemoteEntry {
  const out = { ...entry };
  if (opts.singleWriter) {
    if (!isS3Url(out.url))
      throw new CkvcError(
        'CKVC_BAD_ARGUMENT',
        `--single-writer is for s3:// remotes (other remotes guard their refs themselves); drop it for ${JSON.stringify(out.url)}`,
        { url: out.url },
      );
    out.singleWriter = true;
  } else if (opts.singleWriter === false) delete out.singleWriter;
  if (opts.remoteCkvc !== undefined) out.remoteCkvc = checkRemoteCkvc(opts.remoteCkvc, out.url);
  return out;
}

export class RemoteConfig {
  constructor(private readonly layout: StoreLayout) {}

  async list(): Promise<RemoteEntry[]> {
    const raw = await readFileIfExists(this.layout.remotesFile);
    if (!raw) return [];
    try {
      const obj = JSON.parse(raw.toString('utf8')) as Record<string, Record<string, unknown>>;
      return Object.entries(obj)
        .filter(([, v]) => typeof v?.url === 'string')
        .map(([name, v]) => entryOf(name, v));
    } catch {
      throw new CkvcError(
        'CKVC_CORRUPT_REF',
        `${this.layout.remotesFile} is not valid JSON; fix it or remove it and add the remotes again`,
        { path: this.layout.remotesFile },
      );
    }
  }

  async get(name: string): Promise<RemoteEntry> {
    const r = (await this.list()).find((x) => x.name === name);
    if (!r)
      throw new CkvcError(
        'CKVC_UNKNOWN_REMOTE',
        `no remote named '${name}'; 'ckvc remote list' shows them, 'ckvc remote add NAME URL' adds one`,
        { name },
      );
    return r;
  }

  private async save(list: RemoteEntry[]): Promise<void> {
    const sorted = list.sort((a, b) => (a.name < b.name ? -1 : 1));
    const obj = Object.fromEntries(sorted.map(({ name, ...fields }) => [name, fields]));
    await writeFileDurable(this.layout.remotesFile, `${JSON.stringify(obj, null, 2)}\n`);
  }

  async add(name: string, url: string, opts: RemoteSettings = {}): Promise<RemoteEntry> {
    checkRemoteName(name);
    const entry = settled({ name, url: normaliseUrl(url) }, opts);
    await withLock(`${this.layout.remotesFile}.lock`, 'the remotes', async () => {
      const list = await this.list();
      if (list.some((r) => r.name === name))
        throw new CkvcError(
          'CKVC_REF_CONFLICT',
          `remote '${name}' already exists; 'ckvc remote set ${name} URL' changes its URL or settings`,
          { name },
        );
      await this.save([...list, entry]);
    });
    return entry;
  }

  /**
   * Changes a remote's URL or settings, keeping its name (what partial fetches' records and remote-tracking refs
   * go by). A new URL drops what was learnt about the old one (the conditional-write probe).
   */
  async set(name: string, url: string | undefined, opts: RemoteSettings): Promise<RemoteEntry> {
    let entry: RemoteEntry | undefined;
    await withLock(`${this.layout.remotesFile}.lock`, 'the remotes', async () => {
      const list = await this.list();
      const i = list.findIndex((r) => r.name === name);
      if (i < 0)
        throw new CkvcError('CKVC_UNKNOWN_REMOTE', `no remote named '${name}'; 'ckvc remote add ${name} URL' adds it`, {
          name,
        });
      const old = list[i]!;
      const base: RemoteEntry = url === undefined ? { ...old } : { name, url: normaliseUrl(url) };
      if (url !== undefined && old.filter) base.filter = old.filter;
      if (url !== undefined && old.singleWriter && opts.singleWriter === undefined && isS3Url(base.url))
        base.singleWriter = true;
      if (url !== undefined && old.remoteCkvc !== undefined && opts.remoteCkvc === undefined && isSshUrl(base.url))
        base.remoteCkvc = old.remoteCkvc;
      entry = settled(base, opts);
      list[i] = entry;
      await this.save(list);
    });
    return entry!;
  }

  /**
   * Records what was learnt about a remote (the conditional-write probe) or kept for it (a fetch filter; undefined
   * drops it); a removed remote is left removed.
   */
  async remember(name: string, fields: Partial<Pick<RemoteEntry, 'conditionalWrites' | 'filter'>>): Promise<void> {
    await withLock(`${this.layout.remotesFile}.lock`, 'the remotes', async () => {
      const list = await this.list();
      const i = list.findIndex((r) => r.name === name);
      if (i < 0) return;
      list[i] = { ...list[i]!, ...fields };
      await this.save(list);
    });
  }

  async remove(name: string): Promise<RemoteEntry> {
    let removed: RemoteEntry | undefined;
    await withLock(`${this.layout.remotesFile}.lock`, 'the remotes', async () => {
      const list = await this.list();
      removed = list.find((r) => r.name === name);
      if (!removed) throw new CkvcError('CKVC_UNKNOWN_REMOTE', `no remote named '${name}'`, { name });
      await this.save(list.filter((r) => r.name !== name));
    });
    return removed!;
  }
}
