// `ckvc config show|extract|diff|label`: the config each commit was trained with, byte for byte, compared
// key by key, and labelled by hash.
import * as fs from 'node:fs/promises';
import { configHash, parseConfig, type ConfigFormat } from '../core/config-snapshot.js';
import { diffConfig, type ConfigChange } from '../core/diff/config-delta.js';
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { commitClosure, storeParents } from '../store/ancestry.js';
import type { ObjectStore } from '../store/object-store.js';
import { resolveRevision } from '../store/revision-resolver.js';
import { bundleConfig, bundleRevisionOf, type BundleConfig } from './bundle-config.js';
import { readConfigFile } from './config-file.js';

export interface ConfigSnapshot {
  /** The commit it came from, or absent for a file. */
  commit?: ObjectId;
  /** The file it came from, for a file. */
  file?: string;
  /** The bundle file the commit was read from (`FILE#REV`), for a commit inside a bundle. */
  bundle?: string;
  name: string;
  hash: string;
  format: ConfigFormat;
  label?: string;
  bytes: Buffer;
  value: unknown;
}

async function snapshotOfCommit(store: ObjectStore, rev: string): Promise<ConfigSnapshot> {
  const { id } = await resolveRevision(store, rev);
  const c = await store.readCommit(id);
  if (!c.config)
    throw new CkvcError(
      'CKVC_PATH_NOT_FOUND',
      `commit ${id.slice(0, 12)} (${rev}) was made without --config, so it has no config snapshot`,
      { revision: rev, id },
    );
  const bytes = Buffer.from(await store.readRaw(c.config.snapshot, 'chunk'));
  return snapshotOf(store, { commit: id, config: c.config, bytes });
}

async function snapshotOf(store: ObjectStore, s: BundleConfig, bundle?: string): Promise<ConfigSnapshot> {
  const { commit, config, bytes } = s;
  const parsed = await parseConfig(bytes.toString('utf8'), config.name);
  const label = (await store.configLabels.all()).get(config.hash);
  return {
    commit,
    ...(bundle !== undefined ? { bundle } : {}),
    name: config.name,
    hash: config.hash,
    format: config.format,
    label,
    bytes,
    value: parsed.value,
  };
}

/**
 * A config file when `spec` names an existing file (a file wins over a same-named branch); a commit inside a
 * bundle for `FILE#REV` whose FILE exists (bundle-config.ts); otherwise a revision of the store.
 */
export async function configOf(store: ObjectStore, spec: string): Promise<ConfigSnapshot> {
  const st = await fs.stat(spec).catch(() => undefined);
  if (st?.isFile()) {
    const { bytes, value } = await readConfigFile(spec);
    const hash = configHash(value.value);
    return {
      file: spec,
      name: spec,
      hash,
      format: value.format,
      label: (await store.configLabels.all()).get(hash),
      bytes,
      value: value.value,
    };
  }
  const inBundle = await bundleRevisionOf(spec);
  if (inBundle) return snapshotOf(store, await bundleConfig(store, inBundle), inBundle.file);
  return snapshotOfCommit(store, spec);
}

export interface ConfigDiffResult {
  a: Omit<ConfigSnapshot, 'bytes' | 'value'>;
  b: Omit<ConfigSnapshot, 'bytes' | 'value'>;
  same: boolean;
  changes: ConfigChange[];
}

const describe = ({ bytes: _b, value: _v, ...rest }: ConfigSnapshot) => rest;

export async function configDiff(store: ObjectStore, a: string, b: string): Promise<ConfigDiffResult> {
  const ca = await configOf(store, a);
  const cb = await configOf(store, b);
  const changes = ca.hash === cb.hash ? [] : diffConfig(ca.value, cb.value);
  return { a: describe(ca), b: describe(cb), same: ca.hash === cb.hash, changes };
}

export async function configShow(store: ObjectStore, rev: string): Promise<ConfigSnapshot> {
  return snapshotOfCommit(store, rev);
}

/** Writes the snapshot byte for byte; refuses to replace an existing different file unless forced. */
export async function configExtract(
  store: ObjectStore,
  rev: string,
  out: string,
  force = false,
): Promise<{ commit: ObjectId; file: string; bytes: number; hash: string }> {
  const snap = await snapshotOfCommit(store, rev);
  const existing = await fs.readFile(out).catch(() => undefined);
  if (existing && !existing.equals(snap.bytes) && !force) {
    throw new CkvcError('CKVC_WOULD_OVERWRITE', `${out} exists with other content; add --force to replace it`, {
      path: out,
    });
  }
  await fs.writeFile(out, snap.bytes).catch((e) => {
    throw new CkvcError(
      'CKVC_IO',
      `cannot write ${out}: ${(e as NodeJS.ErrnoException).code}; check the path and permissions`,
      { path: out },
    );
  });
  return { commit: snap.commit!, file: out, bytes: snap.bytes.length, hash: snap.hash };
}

/** Labels a config hash; a unique prefix (>= 6 hex digits) of a hash some commit uses is accepted. */
export async function configLabel(
  store: ObjectStore,
  hashOrPrefix: string,
  text: string,
): Promise<{ hash: string; label: string }> {
  const oneLine = text.replace(/[\r\n\t]+/g, ' ').trim();
  let hash = hashOrPrefix.toLowerCase();
  if (!/^[0-9a-f]{6,64}$/.test(hash))
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `config hash ${JSON.stringify(hashOrPrefix)} is not 6-64 hex digits; 'ckvc show REV' prints a commit's config hash`,
      { hash: hashOrPrefix },
    );
  if (hash.length < 64) {
    const known = await knownConfigHashes(store);
    const hits = [...known].filter((h) => h.startsWith(hash));
    if (hits.length === 0)
      throw new CkvcError(
        'CKVC_UNKNOWN_REVISION',
        `no commit has a config hash starting with ${hash}; give the full 64-digit hash to label it anyway`,
        { hash },
      );
    if (hits.length > 1)
      throw new CkvcError(
        'CKVC_AMBIGUOUS_REVISION',
        `config hash prefix ${hash} matches ${hits.length} configs; give more digits`,
        { hash, matches: hits },
      );
    hash = hits[0]!;
  }
  await store.configLabels.set(hash, oneLine);
  return { hash, label: oneLine };
}

async function knownConfigHashes(store: ObjectStore): Promise<Set<string>> {
  const tips: ObjectId[] = [];
  for (const kind of ['branch', 'tag', 'alias'] as const)
    for (const r of await store.refs.list(kind, { skipCorrupt: true })) tips.push(r.id);
  const out = new Set<string>();
  for (const id of await commitClosure(storeParents(store), tips)) {
    if ((await store.typeOf(id)) !== 'commit') continue;
    const c = await store.readCommit(id);
    if (c.config) out.add(c.config.hash);
  }
  return out;
}
