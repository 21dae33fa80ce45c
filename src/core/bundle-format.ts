// Bundle file layout (spec/BUNDLE.md): a fixed preamble, a canonical CBOR header (refs, prerequisites,
// capabilities, prune records), one pack (spec/FORMAT.md §4), and a trailer hash over everything before it.
// Pure encoders and decoders with every declared size checked; the I/O lives in src/remote/.
import { decodeCanonical, encodeCanonical, type CborValue } from './canonical-cbor.js';
import { CkvcError } from './errors.js';
import { idToBytes, type ObjectId } from './object-id.js';
import { FieldReader, idValue } from './objects/fields.js';
import { refNameProblem } from './ref-name.js';

export const BUNDLE_MAGIC = Buffer.from('CKVCBNDL', 'latin1');
export const BUNDLE_END_MAGIC = Buffer.from('CKVCBEND', 'latin1');
export const BUNDLE_VERSION = 1;
export const BUNDLE_PREAMBLE_BYTES = 16;
export const BUNDLE_TRAILER_BYTES = 40;
export const MAX_BUNDLE_HEADER_BYTES = 16 * 1024 * 1024;
export const MAX_BUNDLE_REFS = 100_000;
/** Capabilities this reader understands; a bundle requiring any other is refused. */
export const KNOWN_CAPABILITIES = ['hash:blake3-256', 'pack:1', 'pack:2'] as const;
/** `pack:2`: the pack may hold codecs 5 and 6 (FORMAT.md §4.3), so an older reader refuses the bundle up front. */
export const REQUIRED_CAPABILITIES = ['hash:blake3-256', 'pack:2'];

export interface BundleRef {
  /** Full ref name: refs/heads/NAME, refs/tags/NAME or refs/aliases/NAME. */
  name: string;
  id: ObjectId;
}

export interface BundlePruneRecord {
  commit: ObjectId;
  time: number;
  tensors: string[] | null;
  /** Files released whole (FORMAT.md §13); absent in records that release tensor data only. */
  files?: string[] | null;
}

export interface BundleHeader {
  version: number;
  required: string[];
  optional: string[];
  refs: BundleRef[];
  prerequisites: ObjectId[];
  pruned: BundlePruneRecord[];
  /** Byte length of the pack that follows the header. */
  packLength: number;
  objects: number;
  created: number;
}

const REF_PREFIXES = ['refs/heads/', 'refs/tags/', 'refs/aliases/'];

export function bad(where: string, what: string, data: Record<string, unknown> = {}): CkvcError {
  return new CkvcError('CKVC_BAD_BUNDLE', `${where}: ${what}`, { where, ...data });
}

/** Why a full ref name in a bundle is unacceptable, or undefined. */
export function bundleRefNameProblem(name: string): string | undefined {
  const prefix = REF_PREFIXES.find((p) => name.startsWith(p));
  if (!prefix) return `is not under ${REF_PREFIXES.join(', ')}`;
  const problem = refNameProblem(name.slice(prefix.length));
  return problem ? `its name ${problem}` : undefined;
}

export function encodeBundleHeader(h: BundleHeader): Buffer {
  const body: CborValue = {
    version: h.version,
    capabilities: { required: h.required, optional: h.optional },
    refs: h.refs.map((r) => ({ name: r.name, id: idToBytes(r.id) })),
    prerequisites: h.prerequisites.map(idToBytes),
    pruned: h.pruned.map((p) => ({
      commit: idToBytes(p.commit), time: p.time, tensors: p.tensors, ...(p.files !== undefined ? { files: p.files } : {}),
    })),
    pack_length: h.packLength,
    objects: h.objects,
    created: h.created,
  };
  return Buffer.from(encodeCanonical(body));
}

export function encodeBundlePreamble(headerLength: number): Buffer {
  const b = Buffer.alloc(BUNDLE_PREAMBLE_BYTES);
  BUNDLE_MAGIC.copy(b, 0);
  b.writeUInt32LE(BUNDLE_VERSION, 8);
  b.writeUInt32LE(headerLength, 12);
  return b;
}

/** Checks the preamble and returns the header length it declares. */
export function decodeBundlePreamble(b: Uint8Array, fileSize: number | undefined, where: string): number {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < BUNDLE_PREAMBLE_BYTES || !buf.subarray(0, 8).equals(BUNDLE_MAGIC)) throw bad(where, 'is not a ckvc bundle (bad magic)');
  const version = buf.readUInt32LE(8);
  if (version !== BUNDLE_VERSION) {
    throw new CkvcError('CKVC_UNSUPPORTED_VERSION', `${where}: bundle format version ${version} is not supported (this ckvc reads ${BUNDLE_VERSION}); upgrade ckvc`, { where, version });
  }
  const headerLength = buf.readUInt32LE(12);
  if (headerLength === 0 || headerLength > MAX_BUNDLE_HEADER_BYTES) throw bad(where, `declares a ${headerLength}-byte header (the limit is ${MAX_BUNDLE_HEADER_BYTES})`);
  if (fileSize !== undefined && BUNDLE_PREAMBLE_BYTES + headerLength + BUNDLE_TRAILER_BYTES > fileSize) throw bad(where, `declares a ${headerLength}-byte header but the file is ${fileSize} bytes`);
  return headerLength;
}

export function decodeBundleHeader(bytes: Uint8Array, where: string): BundleHeader {
  let f: FieldReader;
  let value: CborValue;
  try {
    value = decodeCanonical(bytes, `${where} header`);
    f = FieldReader.of(value, `${where} header`);
  } catch (e) {
    throw bad(where, `header is not canonical CBOR (${(e as Error).message})`);
  }
  try {
    const version = f.uint('version');
    if (version !== BUNDLE_VERSION) throw new CkvcError('CKVC_UNSUPPORTED_VERSION', `${where}: bundle header version ${version} is not supported; upgrade ckvc`, { where, version });
    const caps = f.map('capabilities');
    const list = (k: string) => caps.array(k).map((c, i) => {
      if (typeof c !== 'string') throw bad(where, `capabilities.${k}[${i}] is not a string`);
      return c;
    });
    const required = list('required');
    const optional = list('optional');
    const unknown = required.filter((c) => !(KNOWN_CAPABILITIES as readonly string[]).includes(c));
    if (unknown.length) {
      throw new CkvcError('CKVC_UNSUPPORTED_VERSION', `${where} requires ${unknown.join(', ')}, which this ckvc does not support; upgrade ckvc`, { where, capabilities: unknown });
    }
    const rawRefs = f.array('refs');
    if (rawRefs.length > MAX_BUNDLE_REFS) throw bad(where, `lists ${rawRefs.length} refs (the limit is ${MAX_BUNDLE_REFS})`);
    const seen = new Set<string>();
    const refs = rawRefs.map((r, i) => {
      const rf = FieldReader.of(r, `${where} refs[${i}]`);
      const name = rf.string('name');
      const problem = bundleRefNameProblem(name);
      if (problem) throw bad(where, `ref ${JSON.stringify(name)} ${problem}`, { ref: name });
      if (seen.has(name)) throw bad(where, `ref ${name} is listed twice`, { ref: name });
      seen.add(name);
      return { name, id: rf.id('id') };
    });
    const prerequisites = f.array('prerequisites').map((v, i) => idValue(v, `${where} prerequisites[${i}]`));
    const pruned = f.array('pruned').map((p, i) => {
      const pf = FieldReader.of(p, `${where} pruned[${i}]`);
      const t = pf.raw('tensors');
      const globs = (v: unknown) => v === null || (Array.isArray(v) && v.every((g) => typeof g === 'string' && g.length > 0));
      if (!globs(t)) throw bad(where, `pruned[${i}].tensors is neither null nor a list of globs`);
      const files = pf.has('files') ? pf.raw('files') : undefined;
      if (files !== undefined && !globs(files)) throw bad(where, `pruned[${i}].files is neither null nor a list of globs`);
      const rec = { commit: pf.id('commit'), time: pf.uint('time'), tensors: t as string[] | null };
      return files === undefined ? rec : { ...rec, files: files as string[] | null };
    });
    return { version, required, optional, refs, prerequisites, pruned, packLength: f.uint('pack_length'), objects: f.uint('objects'), created: f.uint('created') };
  } catch (e) {
    if (e instanceof CkvcError && e.code === 'CKVC_CORRUPT_OBJECT') throw bad(where, e.message);
    throw e;
  }
}
