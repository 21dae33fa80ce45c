import { describe, expect, it } from 'vitest';
import { configHash, parseConfig } from '../../src/core/config-snapshot.js';
import { isCkvcError } from '../../src/core/errors.js';
import { objectId } from '../../src/core/store-format/object-id.js';
import { decodeCommit, encodeCommit } from '../../src/core/store-format/objects/commit-object.js';
import { decodeFileRecipe, encodeFileRecipe } from '../../src/core/store-format/objects/file-recipe.js';
import { decodeTag } from '../../src/core/store-format/objects/tag-object.js';
import { decodeTensor, encodeTensor } from '../../src/core/store-format/objects/tensor-object.js';
import { decodeTree, encodeTree } from '../../src/core/store-format/objects/tree-object.js';
import { encodeCanonical } from '../../src/core/store-format/canonical-cbor.js';
import { hex, loadVector, unhex } from './vectors.js';

const ids = loadVector('object-ids.json');

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isCkvcError(e) ? e.code : `not a CkvcError: ${String(e)}`;
  }
  return undefined;
}

describe('object IDs (spec/vectors/object-ids.json)', () => {
  for (const v of ids.ids) {
    it(`${v.type} of ${v.body.length / 2} bytes`, () => expect(objectId(v.type, unhex(v.body))).toBe(v.id));
  }
  it('binds the type: equal bodies of different types have different IDs', () => {
    expect(objectId('chunk', unhex('00'))).not.toBe(objectId('commit', unhex('00')));
  });
  for (const v of ids.objects) {
    it(`${v.type} object body hashes to its ID and decodes`, () => {
      const body = unhex(v.body);
      expect(objectId(v.type, body)).toBe(v.id);
      const decode = {
        tensor: decodeTensor,
        file: decodeFileRecipe,
        tree: decodeTree,
        commit: decodeCommit,
        tag: decodeTag,
      }[v.type as 'tag']!;
      expect(() => decode(body)).not.toThrow();
    });
  }
  it('tensor vector re-encodes from its fields', () => {
    const t = ids.objects.find((o: any) => o.type === 'tensor');
    expect(hex(encodeTensor(t.fields))).toBe(t.body);
    expect(decodeTensor(unhex(t.body))).toEqual(t.fields);
  });
  it('file vector with a tied name re-encodes from its fields', () => {
    const f = ids.objects.find((o: any) => o.type === 'file' && o.fields);
    expect(f.fields.parts[0].tied).toEqual(['lm_head.weight']);
    expect(hex(encodeFileRecipe(f.fields))).toBe(f.body);
    expect(decodeFileRecipe(unhex(f.body))).toEqual(f.fields);
  });
});

describe('object decoders', () => {
  const chunk = objectId('chunk', new Uint8Array([1]));
  it('round-trip a commit with every optional field', () => {
    const c = {
      tree: chunk,
      parents: [chunk],
      message: 'm',
      author: 'a',
      time: 1700000000000,
      branch: 'b',
      config: { hash: 'ab'.repeat(32), snapshot: chunk, name: 'c.yaml', format: 'yaml' as const, size: 3 },
      code: { commit: 'f'.repeat(40), branch: 'main', dirty: true },
      metrics: { loss: 0.1 },
      step: 5,
      epoch: 1.5,
      run: 'r',
      labels: { k: 'v' },
    };
    expect(decodeCommit(encodeCommit(c))).toEqual(c);
  });
  it('round-trip a minimal commit, omitting empty metrics and labels', () => {
    const c = { tree: chunk, parents: [], message: '', author: 'a', time: 0, metrics: {}, labels: {} };
    const body = encodeCommit(c);
    expect(decodeCommit(body)).toMatchObject(c);
    expect(hex(body)).not.toContain(Buffer.from('metrics').toString('hex'));
  });
  it('reject a commit lacking its tree', () => {
    expect(code(() => decodeCommit(encodeCanonical({ parents: [], message: '', author: '', time: 0 })))).toBe(
      'CKVC_CORRUPT_OBJECT',
    );
  });
  it('reject a tensor whose chunk count does not fit its size', () => {
    expect(
      code(() =>
        decodeTensor(encodeCanonical({ dtype: 'F32', shape: [], size: 10, chunk_size: 4, chunks: [unhex(chunk)] })),
      ),
    ).toBe('CKVC_CORRUPT_OBJECT');
  });
  it('reject a file whose parts do not add up', () => {
    const body = encodeFileRecipe({
      size: 1,
      b3: '00'.repeat(32),
      format: 'opaque',
      parts: [{ kind: 'chunk', id: chunk, size: 1 }],
    });
    const bad = encodeCanonical({
      size: 2,
      b3: new Uint8Array(32),
      format: 'opaque',
      parts: [{ chunk: unhex(chunk), size: 1 }],
    });
    expect(decodeFileRecipe(body).size).toBe(1);
    expect(code(() => decodeFileRecipe(bad))).toBe('CKVC_CORRUPT_OBJECT');
  });
  const tiedPart = (tied: unknown) =>
    encodeCanonical({
      size: 0,
      b3: new Uint8Array(32),
      format: 'pytorch',
      parts: [{ tensor: unhex(chunk), size: 0, name: 'wte', tied: tied as string[] }],
    });
  for (const [what, tied] of [
    ['no names', []],
    ['its own name', ['wte']],
    ['a name twice', ['head', 'head']],
    ['a number', [1]],
    ['more than 1024 names', Array.from({ length: 1025 }, (_, i) => `t${i}`)],
  ] as const) {
    it(`reject a tensor part whose tied names hold ${what}`, () => {
      expect(code(() => decodeFileRecipe(tiedPart(tied)))).toBe('CKVC_CORRUPT_OBJECT');
    });
  }
  it("reject a tied name that is another part's name or tied name in the file", () => {
    const parts = (a: object, b: object) =>
      encodeCanonical({
        size: 0,
        b3: new Uint8Array(32),
        format: 'pytorch',
        parts: [
          { tensor: unhex(chunk), size: 0, name: 'wte', ...a },
          { tensor: unhex(chunk), size: 0, name: 'head', ...b },
        ],
      });
    expect(code(() => decodeFileRecipe(parts({ tied: ['head'] }, {})))).toBe('CKVC_CORRUPT_OBJECT');
    expect(code(() => decodeFileRecipe(parts({ tied: ['x'] }, { tied: ['x'] })))).toBe('CKVC_CORRUPT_OBJECT');
    expect(code(() => decodeFileRecipe(parts({}, { tied: ['wte'] })))).toBe('CKVC_CORRUPT_OBJECT');
    expect(decodeFileRecipe(parts({ tied: ['x'] }, { tied: ['y'] })).parts).toHaveLength(2);
  });
  it('an empty tied list is not written', () => {
    const body = encodeFileRecipe({
      size: 0,
      b3: '00'.repeat(32),
      format: 'pytorch',
      parts: [{ kind: 'tensor', id: chunk, size: 0, name: 'wte', tied: [] }],
    });
    expect(decodeFileRecipe(body).parts[0]).not.toHaveProperty('tied');
    expect(decodeFileRecipe(tiedPart(['head'])).parts[0]).toMatchObject({ name: 'wte', tied: ['head'] });
  });
  for (const name of ['..', '.', 'a/b', 'a\0b', '', 'x'.repeat(256)]) {
    it(`reject tree entry name ${JSON.stringify(name.slice(0, 10))}`, () => {
      const bad = encodeCanonical({ entries: [{ name, type: 'file', id: unhex(chunk), size: 0 }] });
      expect(code(() => decodeTree(bad))).toBe('CKVC_CORRUPT_OBJECT');
      expect(code(() => encodeTree({ entries: [{ name, type: 'file', id: chunk, size: 0 }] }))).toBe(
        'CKVC_BAD_ARGUMENT',
      );
    });
  }
  it('reject unsorted or duplicate tree entries', () => {
    const e = (name: string) => ({ name, type: 'file', id: unhex(chunk), size: 0 });
    expect(code(() => decodeTree(encodeCanonical({ entries: [e('b'), e('a')] })))).toBe('CKVC_CORRUPT_OBJECT');
    expect(code(() => decodeTree(encodeCanonical({ entries: [e('a'), e('a')] })))).toBe('CKVC_CORRUPT_OBJECT');
  });
});

describe('config hash (spec/vectors/config-hash.json)', () => {
  const { cases } = loadVector('config-hash.json');
  for (const c of cases) {
    it(c.name, async () => expect(configHash((await parseConfig(c.text, c.name)).value)).toBe(c.hash));
  }
  it('refuses YAML that does not parse, naming the line', async () => {
    const e = await parseConfig('a: 1\nb: [1, 2\n', 'x.yaml').catch((err: unknown) => err);
    expect(isCkvcError(e, 'CKVC_BAD_CONFIG')).toBe(true);
    expect((e as Error).message).toMatch(/x\.yaml/);
    expect((e as Error).message).toMatch(/line \d+/);
  });
  it('refuses duplicate YAML keys and bad JSON', async () => {
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => (e as { code?: string }).code,
      );
    expect(await codeOf(parseConfig('a: 1\na: 2\n', 'd.yaml'))).toBe('CKVC_BAD_CONFIG');
    expect(await codeOf(parseConfig('{"a": 1,}', 'd.json'))).toBe('CKVC_BAD_CONFIG');
  });
});
