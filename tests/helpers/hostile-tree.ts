// Hostile histories for the checkout-safety tests: trees with entry names no ckvc would write (`.git`, its
// other spellings), encoded with src's own object encoders and packed with src's own pack writer, so each
// carries only the defect it is meant to. encodeTree would refuse these names, so trees are encoded here as
// FORMAT.md §5.4 lays them out.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import {
  BUNDLE_END_MAGIC,
  type BundleHeader,
  BUNDLE_VERSION,
  encodeBundleHeader,
  encodeBundlePreamble,
  REQUIRED_CAPABILITIES,
} from '../../src/core/store-format/bundle-format.js';
import { encodeCanonical } from '../../src/core/store-format/canonical-cbor.js';
import {
  ContentHasher,
  idToBytes,
  objectId,
  type ObjectId,
  type ObjectType,
} from '../../src/core/store-format/object-id.js';
import { encodeCommit } from '../../src/core/store-format/objects/commit-object.js';
import { encodeFileRecipe } from '../../src/core/store-format/objects/file-recipe.js';
import { compareNames } from '../../src/core/store-format/objects/tree-object.js';
import { PackWriter } from '../../src/store/pack-writer.js';
import { StoreLayout } from '../../src/store/store-layout.js';

/** A folder: each name maps to a file's contents or a sub-folder. */
export interface TreeSpec {
  [name: string]: string | Buffer | TreeSpec;
}

export interface RawObject {
  type: ObjectType;
  id: ObjectId;
  body: Uint8Array;
  /** Store this chunk XOR-coded against these bytes (FORMAT.md §4.3), whether or not the base travels too. */
  deltaBase?: { id: ObjectId; bytes: Uint8Array; width: number };
}

export interface HostileHistory {
  objects: RawObject[];
  commit: ObjectId;
}

/** The objects of one commit holding `spec`, names taken as they are. */
export function hostileHistory(spec: TreeSpec, message = 'hostile'): HostileHistory {
  const objects: RawObject[] = [];
  const put = (type: ObjectType, body: Uint8Array): ObjectId => {
    const id = objectId(type, body);
    if (!objects.some((o) => o.id === id)) objects.push({ type, id, body });
    return id;
  };
  const tree = (s: TreeSpec): { id: ObjectId; size: number } => {
    const entries = Object.keys(s)
      .sort(compareNames)
      .map((name) => {
        const v = s[name]!;
        if (typeof v === 'string' || Buffer.isBuffer(v)) {
          const bytes = Buffer.from(v);
          const h = new ContentHasher();
          h.update(bytes);
          const parts = bytes.length ? [{ kind: 'chunk' as const, id: put('chunk', bytes), size: bytes.length }] : [];
          const id = put('file', encodeFileRecipe({ size: bytes.length, b3: h.digestHex(), format: 'opaque', parts }));
          return { name, type: 'file', id: idToBytes(id), size: bytes.length };
        }
        const sub = tree(v);
        return { name, type: 'tree', id: idToBytes(sub.id), size: sub.size };
      });
    return { id: put('tree', encodeCanonical({ entries })), size: entries.reduce((a, e) => a + e.size, 0) };
  };
  const root = tree(spec);
  const commit = put(
    'commit',
    encodeCommit({
      tree: root.id,
      parents: [],
      message,
      author: 'mallory',
      time: 1_700_000_000_000,
      metrics: {},
      labels: {},
    }),
  );
  return { objects, commit };
}

async function writePack(layout: StoreLayout, objects: RawObject[], durable: boolean): Promise<string> {
  const w = await PackWriter.create(layout, { durable });
  for (const o of objects) {
    const base = o.deltaBase;
    await w.add(o.type, o.id, o.body, base?.width ?? 1, true, {
      ...(base ? { base: async () => ({ id: base.id, bytes: base.bytes }) } : {}),
    });
  }
  const done = await w.finish();
  if (!done) throw new Error('empty pack');
  return done.file;
}

/** Plants the history in a store as if it had arrived by some path that did not check it, and points `branch` at it. */
export async function plantInStore(store: string, h: HostileHistory, branch: string): Promise<void> {
  await writePack(new StoreLayout(store), h.objects, true);
  const ref = path.join(store, 'refs', 'heads', ...branch.split('/'));
  fs.mkdirSync(path.dirname(ref), { recursive: true });
  fs.writeFileSync(ref, `${h.commit}\n`);
}

/** A well-formed bundle (spec/BUNDLE.md) carrying the history as refs/heads/`branch`. */
export async function hostileBundle(
  file: string,
  scratch: string,
  h: HostileHistory,
  branch: string,
  extra: Partial<BundleHeader> = {},
): Promise<void> {
  const packFile = await writePack(new StoreLayout(scratch), h.objects, false);
  const pack = fs.readFileSync(packFile);
  const header = encodeBundleHeader({
    version: BUNDLE_VERSION,
    required: REQUIRED_CAPABILITIES,
    optional: [],
    refs: [{ name: `refs/heads/${branch}`, id: h.commit }],
    prerequisites: [],
    pruned: [],
    packLength: pack.length,
    objects: h.objects.length,
    created: 1_700_000_000_000,
    ...extra,
  });
  const body = Buffer.concat([encodeBundlePreamble(header.length), header, pack]);
  const hasher = new Blake3Hasher();
  hasher.update(body);
  fs.writeFileSync(file, Buffer.concat([body, hasher.digestBuffer(), BUNDLE_END_MAGIC]));
}
