// A commit: one checkpoint with its provenance (spec/FORMAT.md §5.5). parents[0] is the previous commit on the
// branch; further parents are warm-start origins from other branches.
import { decodeCanonical, encodeCanonical } from '../canonical-cbor.js';
import { idToBytes, type ObjectId } from '../object-id.js';
import { compact, corrupt, FieldReader } from './fields.js';

export interface ConfigRef {
  /** Canonical hash of the parsed config (hex): equal for reformatted or reordered files. */
  hash: string;
  /** Chunk holding the config file's bytes exactly as given. */
  snapshot: ObjectId;
  name: string;
  format: 'yaml' | 'json';
  size: number;
}

export interface CodeRef {
  commit: string;
  branch?: string;
  dirty: boolean;
}

export interface CommitObject {
  tree: ObjectId;
  parents: ObjectId[];
  message: string;
  author: string;
  /** Milliseconds since the Unix epoch, UTC. */
  time: number;
  branch?: string;
  config?: ConfigRef;
  code?: CodeRef;
  metrics: Record<string, number>;
  step?: number;
  epoch?: number;
  run?: string;
  labels: Record<string, string>;
}

export function encodeCommit(c: CommitObject): Uint8Array {
  return encodeCanonical(
    compact({
      tree: idToBytes(c.tree),
      parents: c.parents.map(idToBytes),
      message: c.message,
      author: c.author,
      time: c.time,
      branch: c.branch,
      config: c.config && {
        hash: Buffer.from(c.config.hash, 'hex'),
        snapshot: idToBytes(c.config.snapshot),
        name: c.config.name,
        format: c.config.format,
        size: c.config.size,
      },
      code: c.code && compact({ commit: c.code.commit, branch: c.code.branch, dirty: c.code.dirty }),
      metrics: Object.keys(c.metrics).length ? c.metrics : undefined,
      step: c.step,
      epoch: c.epoch,
      run: c.run,
      labels: Object.keys(c.labels).length ? c.labels : undefined,
    }),
  );
}

// An empty map is written by omitting the key (spec/FORMAT.md §5.5), so a present empty map is not canonical.
function nonEmptyMap(f: FieldReader, key: string): FieldReader {
  const m = f.map(key);
  if (m.entries().length === 0) throw corrupt(f.where, `has an empty "${key}" map (empty maps are omitted)`);
  return m;
}

function stringMap(f: FieldReader, key: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!f.has(key)) return out;
  for (const [k, v] of nonEmptyMap(f, key).entries()) {
    if (typeof v !== 'string') throw corrupt(f.where, `${key}["${k}"] is not a string`);
    out[k] = v;
  }
  return out;
}

function numberMap(f: FieldReader, key: string): Record<string, number> {
  const out: Record<string, number> = {};
  if (!f.has(key)) return out;
  for (const [k, v] of nonEmptyMap(f, key).entries()) {
    if (typeof v !== 'number') throw corrupt(f.where, `${key}["${k}"] is not a number`);
    out[k] = v;
  }
  return out;
}

export function decodeCommit(bytes: Uint8Array, where = 'commit object'): CommitObject {
  const f = FieldReader.of(decodeCanonical(bytes, where), where);
  const parents = f.ids('parents');
  let config: ConfigRef | undefined;
  if (f.has('config')) {
    const c = f.map('config');
    const hash = c.raw('hash');
    if (!(hash instanceof Uint8Array) || hash.length !== 32)
      throw corrupt(c.where, 'field "hash" is not a 32-byte hash');
    const format = c.string('format');
    if (format !== 'yaml' && format !== 'json') throw corrupt(c.where, `has unknown format "${format}"`);
    config = {
      hash: Buffer.from(hash).toString('hex'),
      snapshot: c.id('snapshot'),
      name: c.string('name'),
      format,
      size: c.uint('size'),
    };
  }
  let code: CodeRef | undefined;
  if (f.has('code')) {
    const c = f.map('code');
    code = { commit: c.string('commit'), branch: c.optional('branch', c.string), dirty: c.boolean('dirty') };
  }
  return {
    tree: f.id('tree'),
    parents,
    message: f.string('message'),
    author: f.string('author'),
    time: f.uint('time'),
    branch: f.optional('branch', f.string),
    config,
    code,
    metrics: numberMap(f, 'metrics'),
    step: f.optional('step', f.uint),
    epoch: f.optional('epoch', f.number),
    run: f.optional('run', f.string),
    labels: stringMap(f, 'labels'),
  };
}
