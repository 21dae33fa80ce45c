// What each moving alias tracks (spec/FORMAT.md §12): aliases/<name>.json beside the alias ref itself.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import type { MetricMode } from '../core/metric-mode.js';
import { assertRefName } from '../core/ref-name.js';
import { ioError, readFileIfExists, writeFileDurable } from './durable-fs.js';
import { listFilesBelow } from './file-walk.js';
import type { StoreLayout } from './store-layout.js';

export interface AliasDefinition {
  name: string;
  track: string;
  mode: MetricMode;
  branch: string;
  created: number;
}

export class AliasDefinitions {
  constructor(private readonly layout: StoreLayout) {}

  private file(name: string): string {
    return path.join(this.layout.aliasesDir, ...`${name}.json`.split('/'));
  }

  async read(name: string): Promise<AliasDefinition | undefined> {
    assertRefName(name, 'alias');
    const raw = await readFileIfExists(this.file(name));
    if (!raw) return undefined;
    try {
      const d = JSON.parse(raw.toString('utf8')) as Omit<AliasDefinition, 'name'>;
      if (typeof d.track !== 'string' || (d.mode !== 'min' && d.mode !== 'max') || typeof d.branch !== 'string')
        throw new Error('fields');
      return { name, track: d.track, mode: d.mode, branch: d.branch, created: Number(d.created) || 0 };
    } catch {
      throw new CkvcError(
        'CKVC_CORRUPT_REF',
        `alias definition ${this.file(name)} is not valid JSON with track, mode and branch; re-create it with 'ckvc alias ${name} --track KEY -b BRANCH --force'`,
        { alias: name },
      );
    }
  }

  async write(def: AliasDefinition): Promise<void> {
    const file = this.file(def.name);
    await fs.mkdir(path.dirname(file), { recursive: true }).catch((e) => {
      throw ioError(e, 'create', path.dirname(file));
    });
    const { name: _name, ...body } = def;
    await writeFileDurable(file, `${JSON.stringify(body)}\n`);
  }

  async remove(name: string): Promise<void> {
    await fs.rm(this.file(name), { force: true }).catch((e) => {
      throw ioError(e, 'delete', this.file(name));
    });
  }

  async list(): Promise<AliasDefinition[]> {
    const out: AliasDefinition[] = [];
    for (const rel of await listFilesBelow(this.layout.aliasesDir)) {
      if (!rel.endsWith('.json')) continue;
      const def = await this.read(rel.slice(0, -'.json'.length)).catch(() => undefined);
      if (def) out.push(def);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The aliases that follow `branch`, for the commit path. */
  async tracking(branch: string): Promise<AliasDefinition[]> {
    return (await this.list()).filter((d) => d.branch === branch);
  }
}
