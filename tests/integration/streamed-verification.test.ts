// A received pack's chunk records are verified while the pack arrives (src/remote/streamed-verification.ts,
// spec/BUNDLE.md §3 step 5), and such a result counts only when the final check would read the record the same
// way: the TOC entry at that offset is the record header that was read, and a delta's base is the store's record
// the final check names, with no pack gone from the store's index meanwhile. A bundle whose records all travel
// as stored streams its pack (src/remote/bundle-writer.ts) as a pack writer would write it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectId } from '../../src/core/store-format/object-id.js';
import {
  BUNDLE_PREAMBLE_BYTES,
  BUNDLE_TRAILER_BYTES,
  decodeBundlePreamble,
} from '../../src/core/store-format/bundle-format.js';
import { CODECS, type PackEntry, RECORD_HEADER_BYTES } from '../../src/core/store-format/pack-format.js';
import { objectId } from '../../src/core/store-format/object-id.js';
import { receiveBundle } from '../../src/remote/bundle-reader.js';
import { writeBundle } from '../../src/remote/bundle-writer.js';
import { DirectoryTransport } from '../../src/remote/directory-transport.js';
import { collectObjects } from '../../src/remote/object-collector.js';
import { ARRIVING_PACK_ID, StreamedVerification } from '../../src/remote/streamed-verification.js';
import { remoteHolds } from '../../src/remote/thin-bases.js';
import { ObjectStore } from '../../src/store/object-store.js';
import { PackReader } from '../../src/store/pack-reader.js';
import { PackWriter } from '../../src/store/pack-writer.js';
import { StoreLayout } from '../../src/store/store-layout.js';
import { optimizerStepFloat32, safetensorsBytes, trainedFloat32 } from '../helpers/data.js';
import { memorySink } from '../helpers/memory-sink.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, type TestStore } from '../helpers/test-store.js';

afterAll(cleanupTemp);

const N = 64 * 1024; // one 256 KiB F32 chunk per tensor
const TENSORS = 3;

function checkpoint(tensors: Buffer[]): Buffer {
  return safetensorsBytes(
    Object.fromEntries(tensors.map((t, i) => [`layer.${i}.weight`, { dtype: 'F32', shape: [N], bytes: t }])),
  );
}

async function objectsOf(store: ObjectStore, commit: string): Promise<ObjectId[]> {
  return (await collectObjects(store, [commit], { isBoundary: async () => false })).objects;
}

/** The bundle a push of step 1 sends to a remote that holds step 0: its chunks are deltas on the remote's. */
async function thinPushBundle(local: TestStore, remote: TestStore, c0: string, c1: string): Promise<Buffer> {
  const store = await ObjectStore.open(local.store);
  const t = await DirectoryTransport.open(remote.store, 'test');
  const out = memorySink();
  try {
    const have = new Set(await objectsOf(store, c0));
    const batch = (await objectsOf(store, c1)).filter((id) => !have.has(id));
    const holds = await remoteHolds(store, t, await store.locateAll(batch, 'object to send'));
    const content = { refs: [], objects: batch, prerequisites: [], pruned: [], receiverHolds: holds };
    expect((await writeBundle(store, content, out.sink)).deltasKept).toBe(TENSORS);
  } finally {
    await t.close();
    await store.close();
  }
  return out.bytes();
}

/** The bundle in 64 KiB pieces, each after a turn of the event loop, as a network delivers it. */
async function* pieces(b: Buffer): AsyncIterable<Buffer> {
  for (let at = 0; at < b.length; at += 64 * 1024) {
    await new Promise((r) => setImmediate(r));
    yield b.subarray(at, at + 64 * 1024);
  }
}

type Located = Awaited<ReturnType<ObjectStore['locate']>>[number];

describe('chunk records verified while a thin push arrives', () => {
  let remote: TestStore;
  /** A copy of the received pack (the quarantine is gone once the bundle is dropped), and its TOC. */
  let pack: string;
  let toc: PackEntry[];
  let received: { early: number; chunks: number; deltas: number };

  beforeAll(async () => {
    const local = newStore('ckvc-streamed-l-');
    remote = newStore('ckvc-streamed-r-');
    local.ok(['remote', 'add', 'origin', remote.dir]);
    const f = path.join(tempDir('ckvc-streamed-in-'), 'model.safetensors');
    const t0 = Array.from({ length: TENSORS }, (_, i) => trainedFloat32(i + 1, N));
    fs.writeFileSync(f, checkpoint(t0));
    const c0 = commitId(local, [f, '-m', 's0']);
    local.ok(['push', 'origin', 'main']);
    fs.writeFileSync(f, checkpoint(t0.map((t, i) => optimizerStepFloat32(t, 7 + i))));
    const c1 = commitId(local, [f, '-m', 's1']);
    const bundle = await thinPushBundle(local, remote, c0, c1);
    const store = await ObjectStore.open(remote.store);
    try {
      const rb = await receiveBundle(pieces(bundle), store.layout.tmpDir, 'a push', undefined, { store });
      try {
        toc = rb.entries;
        received = {
          early: rb.verifiedEarly,
          chunks: toc.filter((e) => e.type === 'chunk').length,
          deltas: toc.filter((e) => e.codec === CODECS.xorPlanes).length,
        };
        pack = path.join(tempDir('ckvc-streamed-pack-'), 'received.pack');
        fs.copyFileSync(rb.quarantine.packFile(rb.packId!), pack);
      } finally {
        await rb.close();
      }
    } finally {
      await store.close();
    }
  });

  it('the final check reads none of them again: each is a delta on the store, verified as it arrived', () => {
    expect(received).toEqual({ early: TENSORS, chunks: TENSORS, deltas: TENSORS });
  });

  /** The received pack walked again as it arrives into the remote's store, and what the final check would count. */
  async function confirmed(
    entries: PackEntry[],
    finalBase: (store: ObjectStore) => (id: ObjectId) => Promise<Located>,
    meanwhile?: () => void,
  ): Promise<number> {
    const store = await ObjectStore.open(remote.store);
    const reader = new PackReader(store.layout);
    try {
      reader.readPackFrom(ARRIVING_PACK_ID, pack);
      const size = fs.statSync(pack).size;
      const sv = new StreamedVerification(reader, size, entries.length, store);
      for (let n = 0; n < size; n += 100_000) sv.advance(n);
      sv.advance(size);
      await sv.finish();
      // A record whose header arrived before its body is still one record (it was once counted twice).
      expect(sv.broken).toBeUndefined();
      meanwhile?.();
      return (await sv.confirmed(entries, finalBase(store))).size;
    } finally {
      await reader.close();
      await store.close();
    }
  }
  const at = (store: ObjectStore) => async (id: ObjectId) => (await store.locate([id]))[0];

  it('a result counts only for the record the TOC names at that offset, and a delta only on the base the final check names', async () => {
    const elsewhere = (store: ObjectStore) => async (id: ObjectId) => {
      const l = (await store.locate([id]))[0];
      return l && { ...l, entry: { ...l.entry, offset: l.entry.offset + 1 } };
    };
    const chunk = toc.find((e) => e.type === 'chunk')!;
    const otherLength = toc.map((e) => (e === chunk ? { ...e, rawLength: e.rawLength + 4 } : e));
    const counts = [
      await confirmed(toc, at),
      await confirmed(toc, elsewhere),
      await confirmed(otherLength, at),
      await confirmed(toc, () => async () => undefined),
    ];
    expect(counts).toEqual([TENSORS, 0, TENSORS - 1, 0]);
  });

  it('a walk of records that cannot be the declared pack is certain damage; bytes arriving in any pieces are not', async () => {
    const store = await ObjectStore.open(remote.store);
    const walk = async (objects: number, step: number, upTo = fs.statSync(pack).size) => {
      const reader = new PackReader(store.layout);
      try {
        reader.readPackFrom(ARRIVING_PACK_ID, pack);
        const sv = new StreamedVerification(reader, fs.statSync(pack).size, objects, store);
        // Each advance waits for the walk to catch up, so every header is read before its body is in.
        for (let n = step; n < upTo; n += step) {
          sv.advance(n);
          await new Promise((r) => setTimeout(r, 1));
        }
        sv.advance(upTo);
        await sv.finish();
        return sv.broken;
      } finally {
        await reader.close();
      }
    };
    try {
      expect(await walk(toc.length, 4096)).toBeUndefined();
      expect(await walk(toc.length, 333)).toBeUndefined();
      // One object fewer declared: its TOC would start one entry later, so the records cannot end where they do.
      expect(await walk(toc.length - 1, 65536)).toMatch(
        /^record \d+ ends at byte \d+, but the header's \d+ records must end at byte/,
      );
    } finally {
      await store.close();
    }
  });

  it('a delta on the store does not count once a pack has left its index meanwhile (gc moved records)', async () => {
    // A dead pack for gc to delete: a commit on a branch that is then deleted, its reflog expired.
    const f = path.join(tempDir('ckvc-streamed-junk-'), 'junk.bin');
    fs.writeFileSync(f, Buffer.alloc(4096, 7));
    remote.ok(['commit', f, '-b', 'junk', '-m', 'junk']);
    remote.ok(['branch', '-d', 'junk']);
    const before = await confirmed(toc, at);
    const after = await confirmed(toc, at, () => {
      const gc = remote.run(['gc', '--grace', '0', '--expire-reflog', '0', '--json']);
      expect(gc.code, gc.stderr).toBe(0);
    });
    expect([before, after]).toEqual([TENSORS, 0]);
  });
});

describe('a damaged record while a pack arrives', () => {
  it('ends the early pass: the records after it are left to the final check', async () => {
    const s = newStore('ckvc-streamed-bad-');
    const store = await ObjectStore.open(s.store);
    const reader = new PackReader(store.layout);
    try {
      // 200 chunks of 4 KiB, stored raw; the first one's body damaged.
      const writer = await PackWriter.create(new StoreLayout(tempDir('ckvc-streamed-bad-w-')), { durable: false });
      for (let i = 0; i < 200; i++) {
        const bytes = Buffer.alloc(4096, i);
        bytes.writeUInt32LE((i * 2654435761) >>> 0, 0);
        await writer.add('chunk', objectId('chunk', bytes), bytes, 1, false);
      }
      const made = (await writer.finish())!;
      const first = made.entries.reduce((a, b) => (a.offset < b.offset ? a : b));
      const fd = fs.openSync(made.file, 'r+');
      fs.writeSync(fd, Buffer.from([0xff]), 0, 1, first.offset + RECORD_HEADER_BYTES + 100);
      fs.closeSync(fd);
      reader.readPackFrom(ARRIVING_PACK_ID, made.file);
      const sv = new StreamedVerification(reader, made.size, made.entries.length, store);
      sv.advance(made.size);
      await sv.finish();
      const confirmed = await sv.confirmed(made.entries, async () => undefined);
      // Without the stop, all 199 good ones would be: only the few in flight alongside the bad one finish.
      expect(confirmed.has(first)).toBe(false);
      expect(confirmed.size).toBeLessThan(20);
    } finally {
      await reader.close();
      await store.close();
    }
  });
});

describe('a bundle whose records all travel as stored', () => {
  it('streams a pack byte-identical to the one a pack writer makes of the same records', async () => {
    const s = newStore('ckvc-streamed-pack-');
    const f = path.join(tempDir('ckvc-streamed-pack-in-'), 'model.safetensors');
    const t0 = Array.from({ length: TENSORS }, (_, i) => trainedFloat32(i + 11, N));
    fs.writeFileSync(f, checkpoint(t0));
    commitId(s, [f, '-m', 's0']);
    fs.writeFileSync(f, checkpoint(t0.map((t, i) => optimizerStepFloat32(t, 3 + i))));
    const c1 = commitId(s, [f, '-m', 's1']);
    const store = await ObjectStore.open(s.store);
    try {
      const objects = await objectsOf(store, c1);
      const out = memorySink();
      const w = await writeBundle(store, { refs: [], objects, prerequisites: [], pruned: [] }, out.sink);
      // Both steps travel, so every delta's base does too: nothing is re-encoded, and the pack streams.
      expect([w.deltasKept, w.deltasReencoded]).toEqual([TENSORS, 0]);
      const bundle = out.bytes();
      const headerLength = decodeBundlePreamble(bundle.subarray(0, BUNDLE_PREAMBLE_BYTES), bundle.length, 'b');
      const at = BUNDLE_PREAMBLE_BYTES + headerLength;
      const streamed = bundle.subarray(at, at + w.packLength);
      expect(at + w.packLength + BUNDLE_TRAILER_BYTES).toBe(bundle.length);

      const writer = await PackWriter.create(new StoreLayout(tempDir('ckvc-streamed-pack-w-')), { durable: false });
      for (const loc of await store.locateAll(objects, 'object')) {
        const e = loc.entry;
        const body = await store.packs.readStoredRecord(loc, e.id, { verify: false });
        await writer.addStored(
          { id: e.id, type: e.type, codec: e.codec, rawLength: e.rawLength, storedLength: e.storedLength },
          body,
        );
      }
      const made = (await writer.finish())!;
      expect(streamed.equals(fs.readFileSync(made.file))).toBe(true);
    } finally {
      await store.close();
    }
  });
});
