// `ckvc commit --dry-run`: every check a commit makes (paths and formats, config parse, metrics, ref name), plus
// how the config differs from the parent's, and what would be stored and how much of it is new, writing nothing:
// the writer only hashes, looks up and counts (the check to run before launching a 10-hour job).
import * as path from 'node:path';
import { configHash } from '../core/config-snapshot.js';
import { diffConfig, type ConfigChange } from '../core/diff/config-delta.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { encodeCommit, type ConfigRef } from '../core/store-format/objects/commit-object.js';
import { ingestPaths } from '../store/ingest/tree-ingest.js';
import type { ObjectStore } from '../store/object-store.js';
import { REF_PREFIX } from '../store/ref-store.js';
import { commitFields, prepareCommit, refuseEmptyCommit, type CommitOptions } from './commit.js';
import { configOf } from './config.js';

export interface CommitDryRunResult {
  dryRun: true;
  branch: string;
  /** The branch does not exist yet: the commit would create it. */
  newBranch: boolean;
  parents: ObjectId[];
  files: number;
  tensors: number;
  /** Bytes of the files; and of the data (file bytes and the config snapshot) the store does not hold yet. */
  bytes: number;
  newBytes: number;
  newObjects: number;
  metrics: Record<string, number>;
  step?: number;
  epoch?: number;
  /** The config's hash and, when the parent has a config, the keys that differ from it. */
  config?: { name: string; hash: string; parentHash?: string; changes?: ConfigChange[] };
  warnings?: string[];
}

export async function commitDryRun(store: ObjectStore, opts: CommitOptions): Promise<CommitDryRunResult> {
  const p = await prepareCommit(store, opts);
  const writer = store.countingWriter();
  const ingestOpts = { storeRoot: store.root, signal: opts.signal };
  const { tree, summary } = await ingestPaths(opts.paths, writer, store.config, ingestOpts);
  refuseEmptyCommit(opts, summary);
  const tip = await store.refs.read(REF_PREFIX.branch + p.branch);
  const parents = tip ? [tip, ...p.warm.filter((w) => w !== tip)] : [...p.warm];
  let config: CommitDryRunResult['config'];
  let configRef: ConfigRef | undefined;
  if (p.cfg) {
    const hash = configHash(p.cfg.value.value);
    const snapshot = await writer.put('chunk', p.cfg.bytes);
    const name = path.basename(opts.config!);
    configRef = { hash, snapshot, name, format: p.cfg.value.format, size: p.cfg.bytes.length };
    config = { name: configRef.name, hash };
    const parentConfig = tip ? (await store.readCommit(tip)).config : undefined;
    if (parentConfig) {
      const changes =
        parentConfig.hash === hash ? [] : diffConfig((await configOf(store, tip!)).value, p.cfg.value.value);
      config = { ...config, parentHash: parentConfig.hash, changes };
    }
  }
  // The commit object is encoded as a real commit would be (its checks run), and counted.
  await writer.put('commit', encodeCommit({ tree, parents, ...commitFields(opts, p, configRef) }));
  await writer.commit();
  return {
    dryRun: true,
    branch: p.branch,
    newBranch: !tip,
    parents,
    files: summary.files,
    tensors: summary.tensors,
    bytes: summary.bytes,
    newBytes: writer.stats.bytesNew,
    newObjects: writer.stats.objectsNew,
    metrics: p.metrics,
    ...(p.step !== undefined ? { step: p.step } : {}),
    ...(p.epoch !== undefined ? { epoch: p.epoch } : {}),
    ...(config ? { config } : {}),
    ...(summary.warnings.length ? { warnings: summary.warnings } : {}),
  };
}
