// Named remotes of a store (spec/PROTOCOL.md §1): remotes.json, replaced whole under a lock.
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import { refNameProblem } from '../core/ref-name.js';
import { readFileIfExists, writeFileDurable } from '../store/durable-fs.js';
import { withLock } from '../store/lock-file.js';
import type { StoreLayout } from '../store/store-layout.js';

export interface RemoteEntry {
  name: string;
  url: string;
}

export function checkRemoteName(name: string): void {
  const problem = refNameProblem(name) ?? (name.includes('/') ? "contains '/'" : undefined);
  if (problem) throw new CkvcError('CKVC_BAD_REF_NAME', `invalid remote name ${JSON.stringify(name)}: it ${problem}; use letters, digits, '-', '_' and '.'`, { name });
}

/** A URL is http(s)://host:port/ or a folder (another store, or a folder holding .ckvc). */
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
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new CkvcError('CKVC_BAD_ARGUMENT', `remote URL ${JSON.stringify(url)}: only http(s):// and folders are supported`, { url });
  return path.resolve(cwd, url);
}

export class RemoteConfig {
  constructor(private readonly layout: StoreLayout) {}

  async list(): Promise<RemoteEntry[]> {
    const raw = await readFileIfExists(this.layout.remotesFile);
    if (!raw) return [];
    try {
      const obj = JSON.parse(raw.toString('utf8')) as Record<string, { url: string }>;
      return Object.entries(obj).filter(([, v]) => typeof v?.url === 'string').map(([name, v]) => ({ name, url: v.url }));
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
    const obj = Object.fromEntries(list.sort((a, b) => (a.name < b.name ? -1 : 1)).map((r) => [r.name, { url: r.url }]));
    await writeFileDurable(this.layout.remotesFile, `${JSON.stringify(obj, null, 2)}\n`);
  }

  async add(name: string, url: string): Promise<RemoteEntry> {
    checkRemoteName(name);
    const entry = { name, url: normaliseUrl(url) };
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
