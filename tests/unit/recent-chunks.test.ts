import { describe, expect, it } from 'vitest';
import type { ObjectId } from '../../src/core/store-format/object-id.js';
import { CODECS } from '../../src/core/store-format/pack-format.js';
import { RecentChunks } from '../../src/store/recent-chunks.js';

const id = 'a'.repeat(64) as ObjectId;
const grouped = new Uint8Array([1, 2, 3, 4]);
const at = (packId: string, offset: number) => ({
  packId,
  entry: { id, type: 'chunk' as const, codec: CODECS.xorPlanes, offset, rawLength: 4, storedLength: 4 },
});

describe('RecentChunks', () => {
  const recent = new RecentChunks();
  recent.replace([{ id, grouped, width: 4, depth: 3, planeCosts: [9, 8, 7, 6], packId: 'p1', offset: 40 }]);

  it("answers for the record this handle wrote, with its depth and its planes' costs", () => {
    expect(recent.get(at('p1', 40), 4)).toEqual({ grouped, depth: 3, planeCosts: [9, 8, 7, 6] });
    // deeper than asked for
    expect(recent.get(at('p1', 40), 4, 2)).toEqual({ grouped: undefined, depth: 3, planeCosts: [9, 8, 7, 6] });
  });

  it('does not answer once the index names another record of the chunk, or for another width', () => {
    // gc re-encoded it, or another process stored it again: that record's depth is not known here
    expect(recent.get(at('p2', 40), 4)).toBeUndefined();
    expect(recent.get(at('p1', 96), 4)).toBeUndefined();
    expect(recent.get(at('p1', 40), 2)).toBeUndefined();
  });

  it('forgets the previous commit when the next one is remembered', () => {
    const other = 'b'.repeat(64) as ObjectId;
    const fresh = new RecentChunks();
    fresh.replace([{ id, grouped, width: 4, depth: 0, planeCosts: [1, 1, 1, 1], packId: 'p1', offset: 40 }]);
    fresh.replace([{ id: other, grouped, width: 4, depth: 0, planeCosts: [1, 1, 1, 1], packId: 'p3', offset: 8 }]);
    expect(fresh.get(at('p1', 40), 4)).toBeUndefined();
  });
});
