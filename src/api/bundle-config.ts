// `FILE#REV` for `config diff`: a commit inside a bundle file, read without importing anything. The bundle is
// verified whole first (as `verify FILE` does: trailer, pack, every object re-hashed, closure) in a system temp
// folder; only then is REV looked up among its refs and commits and the commit's config snapshot read.
import * as fs from 'node:fs/promises';
import type { CommitObject } from '../core/store-format/objects/commit-object.js';
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { withVerifiedBundle, type BundleReport } from './bundle.js';

export interface BundleRevision {
  file: string;
  rev: string;
}

/** `FILE#REV` when the part before the last `#` is an existing file (ref names may hold `#`; a file wins). */
export async function bundleRevisionOf(spec: string): Promise<BundleRevision | undefined> {
  const at = spec.lastIndexOf('#');
  if (at <= 0) return undefined;
  const file = spec.slice(0, at);
  if (!(await fs.stat(file).catch(() => undefined))?.isFile()) return undefined;
  return { file, rev: spec.slice(at + 1) };
}

/** REV among the bundle's refs (full, or a branch, tag or alias name) or its commits (full ID, prefix of 6+). */
function commitInBundle(r: BundleReport, rev: string, where: string): ObjectId {
  const names = rev.startsWith('refs/') ? [rev] : ['refs/heads/', 'refs/tags/', 'refs/aliases/'].map((p) => p + rev);
  for (const name of names) {
    const ref = r.refs.find((x) => x.name === name);
    if (ref) return ref.commit;
  }
  const prefix = rev.toLowerCase();
  const hits = /^[0-9a-f]{6,64}$/.test(prefix) ? r.commits.filter((c) => c.id.startsWith(prefix)) : [];
  if (hits.length === 1) return hits[0]!.id;
  if (hits.length > 1) {
    throw new CkvcError(
      'CKVC_AMBIGUOUS_REVISION',
      `${JSON.stringify(rev)} matches ${hits.length} commits in ${where}; ` + 'give more digits',
      { revision: rev, matches: hits.map((c) => c.id) },
    );
  }
  const refs = r.refs.map((x) => x.name.replace(/^refs\/(heads|tags|aliases)\//, '')).join(', ') || 'none';
  throw new CkvcError(
    'CKVC_UNKNOWN_REVISION',
    `${JSON.stringify(rev)} is neither a ref nor a commit of ${where} ` +
      `(its refs: ${refs}); 'ckvc verify FILE' lists its commits`,
    { revision: rev },
  );
}

export interface BundleConfig {
  commit: ObjectId;
  config: NonNullable<CommitObject['config']>;
  bytes: Buffer;
}

/**
 * The config snapshot of REV inside FILE. A snapshot left to an incremental bundle's prerequisites is read from
 * `store` when it has it (reading only: nothing is written).
 */
export async function bundleConfig(store: ObjectStore, b: BundleRevision): Promise<BundleConfig> {
  const where = `bundle ${b.file}`;
  if (b.rev === '') {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `${b.file}# names no revision; write FILE#REV, REV a ref or commit of ` + 'the bundle (e.g. g2.ckvb#phase-g2)',
      { path: b.file },
    );
  }
  return withVerifiedBundle(b.file, async (report, o) => {
    const id = commitInBundle(report, b.rev, where);
    const c = await o.readCommit(id);
    if (!c.config) {
      throw new CkvcError(
        'CKVC_PATH_NOT_FOUND',
        `commit ${id.slice(0, 12)} (${b.rev} in ${where}) was made without ` + '--config, so it has no config snapshot',
        { revision: b.rev, id },
      );
    }
    const snapshot = c.config.snapshot;
    if (!o.inBundle(snapshot) && !(await store.has(snapshot))) {
      const missing = report.prerequisites.map((p) => p.slice(0, 12)).join(', ');
      throw new CkvcError(
        'CKVC_MISSING_PREREQUISITE',
        `the config snapshot of commit ${id.slice(0, 12)} is not in ` +
          `${where}: it was left to its prerequisites (${missing}), which this store does not hold; run the diff in a ` +
          'store that has them',
        { prerequisites: report.prerequisites },
      );
    }
    const raw = o.inBundle(snapshot) ? await o.read(snapshot, 'chunk') : await store.readRaw(snapshot, 'chunk');
    return { commit: id, config: c.config, bytes: Buffer.from(raw) };
  });
}
