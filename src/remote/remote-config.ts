// Named remotes of a store (spec/PROTOCOL.md §1): remotes.json, replaced whole under a lock.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import { refNameProblem } from '../core/ref-name.js';
import { readFileIfExists, writeFileDurable } from '../store/durable-fs.js';
import { withLock } from '../store/lock-file.js';
import type { StoreLayout } from '../store/store-layout.js';
import { formatSshUrl, isSshUrl, looksLikeScp, parseSshUrl } from './ssh-url.js';

export interface RemoteEntry {
  name: string;
  url: string;
  /** SSH remotes: the command the far side runs instead of `ckvc` (spec/PROTOCOL.md §5). */
  remoteCkvc?: string;
}

export function checkRemoteName(name: string): void {
  const problem = refNameProblem(name) ?? (name.includes('/') ? "contains '/'" : undefined);
  if (problem) throw new CkvcError('CKVC_BAD_REF_NAME', `invalid remote name ${JSON.stringify(name)}: it ${problem}; use letters, digits, '-', '_' and '.'`, { name });
}

/**
 * An address that looks like scp's `host:path` means SSH, as in git; a folder of that name must be written so that
 * it does not (./user@host:path), and one that exists is refused rather than silently taken for a host.
 */
function normaliseSshUrl(url: string, cwd: string): string {
  if (!isSshUrl(url) && fs.existsSync(path.resolve(cwd, url))) {
    throw new CkvcError('CKVC_BAD_ARGUMENT', `remote URL ${JSON.stringify(url)} reads as an SSH address (host:path), `
      + `but a folder of that name exists here; write ./${url} for the folder, or ssh://HOST/PATH for SSH`, { url });
  }
  return formatSshUrl(parseSshUrl(url));
}

/**
 * A URL is ssh://[user@]host[:port]/path or [user@]host:path (SSH), http(s)://host:port/ or a folder (another
 * store, or a folder holding .ckvc).
 */
export function normaliseUrl(url: string, cwd = process.cwd()): string {
  if (/^https?:\/\//i.test(url)) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new CkvcError('CKVC_BAD_ARGUMENT', `remote URL ${JSON.stringify(url)} does not parse; use http://host:port/ or a folder`, { url });
    }
    return u.toString().replace(/\/?$/, '/');
  }
  if (isSshUrl(url) || looksLikeScp(url)) return normaliseSshUrl(url, cwd);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new CkvcError('CKVC_BAD_ARGUMENT', `remote URL ${JSON.stringify(url)}: only http(s):// and folders are supported`, { url });
  return path.resolve(cwd, url);
}

/** `--remote-ckvc`: only for SSH remotes, one line of printable text (the far shell runs it as written). */
function checkRemoteCkvc(cmd: string, url: string): string {
  if (!isSshUrl(url)) {
    throw new CkvcError('CKVC_USAGE', `--remote-ckvc is for SSH remotes only; ${JSON.stringify(url)} is not one`, { url });
  }
  // eslint-disable-next-line no-control-regex
  if (!cmd.trim() || /[\u0000-\u001f\u007f]/.test(cmd)) {
    throw new CkvcError('CKVC_BAD_ARGUMENT', `--remote-ckvc ${JSON.stringify(cmd)} must be a non-empty command on one line`, { cmd });
  }
  return cmd;
}

export class RemoteConfig {
  constructor(private readonly layout: StoreLayout) {}

  async list(): Promise<RemoteEntry[]> {
    const raw = await readFileIfExists(this.layout.remotesFile);
    if (!raw) return [];
    try {
      const obj = JSON.parse(raw.toString('utf8')) as Record<string, { url: string; remoteCkvc?: unknown }>;
      return Object.entries(obj).filter(([, v]) => typeof v?.url === 'string')
        .map(([name, v]) => {
          const entry: RemoteEntry = { name, url: v.url };
          if (typeof v.remoteCkvc === 'string') entry.remoteCkvc = v.remoteCkvc;
          return entry;
        });
    } catch {
      throw new CkvcError('CKVC_CORRUPT_REF', `${this.layout.remotesFile} is not valid JSON; fix it or remove it and add the remotes again`, { path: this.layout.remotesFile });
    }
  }

  async get(name: string): Promise<RemoteEntry> {
    const r = (await this.list()).find((x) => x.name === name);
    if (!r) throw new CkvcError('CKVC_UNKNOWN_REMOTE', `no remote named '${name}'; 'ckvc remote list' shows them, 'ckvc remote add NAME URL' adds one`, { name });
    return r;
  }

  private async save(list: RemoteEntry[]): Promise<void> {
    const sorted = list.sort((a, b) => (a.name < b.name ? -1 : 1));
    const obj = Object.fromEntries(sorted.map(({ name, ...fields }) => [name, fields]));
    await writeFileDurable(this.layout.remotesFile, `${JSON.stringify(obj, null, 2)}\n`);
  }

  async add(name: string, url: string, opts: { remoteCkvc?: string } = {}): Promise<RemoteEntry> {
    checkRemoteName(name);
    const entry: RemoteEntry = { name, url: normaliseUrl(url) };
    if (opts.remoteCkvc !== undefined) entry.remoteCkvc = checkRemoteCkvc(opts.remoteCkvc, entry.url);
    await withLock(`${this.layout.remotesFile}.lock`, 'the remotes', async () => {
      const list = await this.list();
      if (list.some((r) => r.name === name)) throw new CkvcError('CKVC_REF_CONFLICT', `remote '${name}' already exists; remove it first to change its URL`, { name });
      await this.save([...list, entry]);
    });
    return entry;
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
