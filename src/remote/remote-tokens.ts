// Tokens saved per remote by `remote add --token-file` (spec/PROTOCOL.md §1): remote-tokens.json, mode 0600,
// replaced whole under the remotes' lock, so that pushes need neither the environment nor the file each time.
import { CkvcError } from '../core/errors.js';
import { isJsonObject } from '../core/json-object.js';
import { readFileIfExists, writeFileDurable } from '../store/durable-fs.js';
import { withLock } from '../store/lock-file.js';
import type { StoreLayout } from '../store/store-layout.js';

export class RemoteTokens {
  constructor(private readonly layout: StoreLayout) {}

  private async all(): Promise<Record<string, { token: string }>> {
    const raw = await readFileIfExists(this.layout.remoteTokensFile);
    if (!raw) return {};
    try {
      const obj = JSON.parse(raw.toString('utf8')) as unknown;
      if (!isJsonObject(obj)) throw new Error('not an object');
      return obj as Record<string, { token: string }>;
    } catch {
      const file = this.layout.remoteTokensFile;
      throw new CkvcError(
        'CKVC_CORRUPT_REF',
        `${file} is not valid JSON; remove it and add the remotes' tokens again ` + '(remote add --token-file)',
        { path: file },
      );
    }
  }

  async get(name: string): Promise<string | undefined> {
    const t = (await this.all())[name]?.token;
    return typeof t === 'string' && t ? t : undefined;
  }

  /** Sets (a token) or drops (undefined) the token of `name`. */
  async set(name: string, token: string | undefined): Promise<void> {
    await withLock(`${this.layout.remotesFile}.lock`, 'the remotes', async () => {
      const all = await this.all();
      if (token === undefined && !(name in all)) return;
      if (token === undefined) delete all[name];
      else all[name] = { token };
      await writeFileDurable(this.layout.remoteTokensFile, `${JSON.stringify(all, null, 2)}\n`, undefined, 0o600);
    });
  }
}
