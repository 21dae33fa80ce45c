// Human labels for config hashes (spec/FORMAT.md §14): one small JSON map, replaced whole under a lock.
import { CkvcError } from '../core/errors.js';
import { readFileIfExists, writeFileDurable } from './durable-fs.js';
import { withLock } from './lock-file.js';
import type { StoreLayout } from './store-layout.js';

/** A received label not taken: the config has another one here (BUNDLE.md §4). */
export interface KeptLabel {
  config: string;
  kept: string;
  received: string;
}

export class ConfigLabels {
  private cache: Map<string, string> | undefined;

  constructor(private readonly layout: StoreLayout) {}

  async all(): Promise<Map<string, string>> {
    if (this.cache) return this.cache;
    const raw = await readFileIfExists(this.layout.configLabelsFile);
    const out = new Map<string, string>();
    if (raw) {
      let obj: unknown;
      try {
        obj = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new CkvcError(
          'CKVC_CORRUPT_REF',
          `${this.layout.configLabelsFile} is not valid JSON; fix or delete it (it only holds labels)`,
          { path: this.layout.configLabelsFile },
        );
      }
      for (const [k, v] of Object.entries(obj as Record<string, unknown>)) if (typeof v === 'string') out.set(k, v);
    }
    this.cache = out;
    return out;
  }

  async set(hash: string, text: string): Promise<void> {
    await this.update((cur) => {
      if (text === '') cur.delete(hash);
      else cur.set(hash, text);
      return true;
    });
  }

  /**
   * Adds labels received from another store (BUNDLE.md §4): a config that has a label here keeps it, whatever
   * arrives. Returns the received labels that differ from the one kept.
   */
  async addMissing(labels: { config: string; text: string }[]): Promise<KeptLabel[]> {
    const differing: KeptLabel[] = [];
    if (!labels.length) return differing;
    await this.update((cur) => {
      let added = false;
      for (const l of labels) {
        const kept = cur.get(l.config);
        if (kept === undefined) {
          cur.set(l.config, l.text);
          added = true;
        } else if (kept !== l.text) differing.push({ config: l.config, kept, received: l.text });
      }
      return added;
    });
    return differing;
  }

  /** Reads the labels under the lock, lets `change` edit them, and writes them back if it says it changed any. */
  private async update(change: (labels: Map<string, string>) => boolean): Promise<void> {
    await withLock(`${this.layout.configLabelsFile}.lock`, 'the config labels', async () => {
      this.cache = undefined;
      const cur = await this.all();
      if (!change(cur)) return;
      const sorted = Object.fromEntries([...cur].sort(([a], [b]) => (a < b ? -1 : 1)));
      await writeFileDurable(this.layout.configLabelsFile, `${JSON.stringify(sorted, null, 2)}\n`);
    });
  }
}
