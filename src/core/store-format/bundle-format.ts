// Bundle file layout (spec/BUNDLE.md): a fixed preamble, a canonical CBOR header (refs, prerequisites,
// capabilities, prune records), one pack (spec/FORMAT.md §4), and a trailer hash over everything before it.
// Pure encoders and decoders with every declared size checked; the I/O lives in src/remote/.
import { decodeCanonical, encodeCanonical, type CborValue } from './canonical-cbor.js';
import { CkvcError } from '../errors.js';
import { idToBytes, type ObjectId } from './object-id.js';
import { FieldReader, idValue } from './objects/fields.js';
import { refNameProblem } from '../ref-name.js';

export const BUNDLE_MAGIC = Buffer.from('CKVCBNDL', 'latin1');
export const BUNDLE_END_MAGIC = Buffer.from('CKVCBEND', 'latin1');
export const BUNDLE_VERSION = 1;
export const BUNDLE_PREAMBLE_BYTES = 16;
export const BUNDLE_TRAILER_BYTES = 40;
export const MAX_BUNDLE_HEADER_BYTES = 16 * 1024 * 1024;
export const MAX_BUNDLE_REFS = 100_000;
export const MAX_BUNDLE_LABELS = 100_000;
/** A config label is one line a person typed (FORMAT.md §14): long enough for that, short enough to show. */
export const MAX_CONFIG_LABEL_BYTES = 1000;
/** Capabilities this reader understands; a bundle requiring any other is refused. */
export const KNOWN_CAPABILITIES = ['hash:blake3-256', 'pack:1', 'pack:2', 'shallow', 'thin'] as const;
/** Required by a bundle with `shallow` entries, so a reader that would call the cut history missing says why. */
export const SHALLOW_CAPABILITY = 'shallow';
export const MAX_BUNDLE_SHALLOW = 100_000;
/** Required by a bundle with `bases` (a thin bundle), so a reader that would call its delta bases missing says why. */
export const THIN_CAPABILITY = 'thin';
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

/** A config label travelling with the commits that use the config (BUNDLE.md §2). */
export interface BundleConfigLabel {
  /** The config hash (64 hex), as `config-labels.json` keys it. */
  config: string;
  text: string;
}

export interface BundleHeader {
  version: number;
  required: string[];
  optional: string[];
  refs: BundleRef[];
  prerequisites: ObjectId[];
  pruned: BundlePruneRecord[];
  /** Absent when the header has no `labels` (older writers; writers leave the key out when empty). */
  labels?: BundleConfigLabel[];
  /** Commits of the pack whose parents past the boundary are cut (BUNDLE.md §2); absent when none are. */
  shallow?: ObjectId[];
  /** Chunks outside the pack that its delta records use as bases (a thin bundle, BUNDLE.md §2); absent when none. */
  bases?: ObjectId[];
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

/** Why a label's text cannot travel in a bundle, or undefined: it must be one line a terminal shows as written. */
export function configLabelProblem(text: string): string | undefined {
  if (text.length === 0) return 'is empty';
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_CONFIG_LABEL_BYTES) return `is ${bytes} bytes of UTF-8 (the limit is ${MAX_CONFIG_LABEL_BYTES})`;
  for (const ch of text) {
    if (unshowable(ch.codePointAt(0)!)) return 'holds a control character, line separator or bidi override';
  }
  return undefined;
}

/**
 * The characters terminal-text.ts escapes: a label from elsewhere must not move a cursor, end a line or reorder
 * text.
 */
function unshowable(c: number): boolean {
  return (
    c <= 0x1f ||
    (c >= 0x7f && c <= 0x9f) ||
    c === 0x2028 ||
    c === 0x2029 ||
    (c >= 0x202a && c <= 0x202e) ||
    (c >= 0x2066 && c <= 0x2069)
  );
}

export function encodeBundleHeader(h: BundleHeader): Buffer {
  const body: CborValue = {
    version: h.version,
    capabilities: {
      required: [
        ...new Set([
          ...h.required,
          ...(h.shallow?.length ? [SHALLOW_CAPABILITY] : []),
          ...(h.bases?.length ? [THIN_CAPABILITY] : []),
        ]),
      ],
      optional: h.optional,
    },
    refs: h.refs.map((r) => ({ name: r.name, id: idToBytes(r.id) })),
    prerequisites: h.prerequisites.map(idToBytes),
    pruned: h.pruned.map((p) => ({
      commit: idToBytes(p.commit),
      time: p.time,
      tensors: p.tensors,
      ...(p.files !== undefined ? { files: p.files } : {}),
    })),
    ...(h.labels?.length ? { labels: h.labels.map((l) => ({ config: idToBytes(l.config), text: l.text })) } : {}),
    ...(h.shallow?.length ? { shallow: [...h.shallow].sort().map(idToBytes) } : {}),
    ...(h.bases?.length ? { bases: [...h.bases].sort().map(idToBytes) } : {}),
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
  // The magic is looked at first, so that a few bytes of something else are not reported as a truncated bundle.
  const start = buf.subarray(0, Math.min(buf.length, BUNDLE_MAGIC.length));
  if (buf.length === 0) throw bad(where, `is empty (a ckvc bundle starts with ${BUNDLE_MAGIC.toString('latin1')})`);
  if (!start.equals(BUNDLE_MAGIC.subarray(0, start.length)))
    throw bad(where, `is not a ckvc bundle (bad magic: it does not start with ${BUNDLE_MAGIC.toString('latin1')})`);
  if (buf.length < BUNDLE_PREAMBLE_BYTES)
    throw bad(where, `is truncated: it ends ${buf.length} bytes into the ${BUNDLE_PREAMBLE_BYTES}-byte preamble`);
  const version = buf.readUInt32LE(8);
  if (version !== BUNDLE_VERSION) {
    throw new CkvcError(
      'CKVC_UNSUPPORTED_VERSION',
      `${where}: bundle format version ${version} is not supported (this ckvc reads ${BUNDLE_VERSION}); upgrade ckvc`,
      { where, version },
    );
  }
  const headerLength = buf.readUInt32LE(12);
  if (headerLength === 0 || headerLength > MAX_BUNDLE_HEADER_BYTES)
    throw bad(where, `declares a ${headerLength}-byte header (the limit is ${MAX_BUNDLE_HEADER_BYTES})`);
  if (fileSize !== undefined && BUNDLE_PREAMBLE_BYTES + headerLength + BUNDLE_TRAILER_BYTES > fileSize)
    throw bad(where, `declares a ${headerLength}-byte header but the file is ${fileSize} bytes`);
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
    if (version !== BUNDLE_VERSION)
      throw new CkvcError(
        'CKVC_UNSUPPORTED_VERSION',
        `${where}: bundle header version ${version} is not supported; upgrade ckvc`,
        { where, version },
      );
    const caps = f.map('capabilities');
    const list = (k: string) =>
      caps.array(k).map((c, i) => {
        if (typeof c !== 'string') throw bad(where, `capabilities.${k}[${i}] is not a string`);
        return c;
      });
    const required = list('required');
    const optional = list('optional');
    const unknown = required.filter((c) => !(KNOWN_CAPABILITIES as readonly string[]).includes(c));
    if (unknown.length) {
      throw new CkvcError(
        'CKVC_UNSUPPORTED_VERSION',
        `${where} requires ${unknown.join(', ')}, which this ckvc does not support; upgrade ckvc`,
        { where, capabilities: unknown },
      );
    }
    const rawRefs = f.array('refs');
    if (rawRefs.length > MAX_BUNDLE_REFS)
      throw bad(where, `lists ${rawRefs.length} refs (the limit is ${MAX_BUNDLE_REFS})`);
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
      const globs = (v: unknown) =>
        v === null || (Array.isArray(v) && v.every((g) => typeof g === 'string' && g.length > 0));
      if (!globs(t)) throw bad(where, `pruned[${i}].tensors is neither null nor a list of globs`);
      const files = pf.has('files') ? pf.raw('files') : undefined;
      if (files !== undefined && !globs(files))
        throw bad(where, `pruned[${i}].files is neither null nor a list of globs`);
      const rec = { commit: pf.id('commit'), time: pf.uint('time'), tensors: t as string[] | null };
      return files === undefined ? rec : { ...rec, files: files as string[] | null };
    });
    const header: BundleHeader = {
      version,
      required,
      optional,
      refs,
      prerequisites,
      pruned,
      packLength: f.uint('pack_length'),
      objects: f.uint('objects'),
      created: f.uint('created'),
    };
    if (f.has('labels')) header.labels = decodeLabels(f.array('labels'), where);
    if (f.has('shallow')) header.shallow = decodeShallow(f.array('shallow'), required, where);
    if (f.has('bases')) header.bases = decodeBases(f.array('bases'), required, header.objects, where);
    return header;
  } catch (e) {
    if (e instanceof CkvcError && e.code === 'CKVC_CORRUPT_OBJECT') throw bad(where, e.message);
    throw e;
  }
}

/** The `shallow` of a header: commit IDs, each once, in a bundle that requires the capability. */
function decodeShallow(raw: CborValue[], required: string[], where: string): ObjectId[] {
  if (!required.includes(SHALLOW_CAPABILITY)) throw bad(where, `lists shallow commits without requiring "shallow"`);
  if (raw.length > MAX_BUNDLE_SHALLOW) {
    throw bad(where, `lists ${raw.length} shallow commits (the limit is ${MAX_BUNDLE_SHALLOW})`);
  }
  const seen = new Set<ObjectId>();
  return raw.map((v, i) => {
    const id = idValue(v, `${where} shallow[${i}]`);
    if (seen.has(id)) throw bad(where, `lists shallow commit ${id.slice(0, 12)} twice`, { commit: id });
    seen.add(id);
    return id;
  });
}

/** The `bases` of a header: chunk IDs, each once, no more than the pack's records, in a bundle that requires `thin`. */
function decodeBases(raw: CborValue[], required: string[], objects: number, where: string): ObjectId[] {
  if (!required.includes(THIN_CAPABILITY)) throw bad(where, `lists delta bases without requiring "thin"`);
  if (raw.length > objects) throw bad(where, `lists ${raw.length} delta bases for ${objects} objects`);
  const seen = new Set<ObjectId>();
  return raw.map((v, i) => {
    const id = idValue(v, `${where} bases[${i}]`);
    if (seen.has(id)) throw bad(where, `lists delta base ${id.slice(0, 12)} twice`, { id });
    seen.add(id);
    return id;
  });
}

/** The `labels` of a header: each a config hash once, with a text `configLabelProblem` accepts. */
function decodeLabels(raw: CborValue[], where: string): BundleConfigLabel[] {
  if (raw.length > MAX_BUNDLE_LABELS) {
    throw bad(where, `lists ${raw.length} config labels (the limit is ${MAX_BUNDLE_LABELS})`);
  }
  const seen = new Set<string>();
  return raw.map((l, i) => {
    const lf = FieldReader.of(l, `${where} labels[${i}]`);
    const config = lf.id('config');
    const text = lf.string('text');
    const problem = configLabelProblem(text);
    if (problem) throw bad(where, `the label of config ${config.slice(0, 12)} ${problem}`, { config });
    if (seen.has(config)) throw bad(where, `config ${config.slice(0, 12)} is labelled twice`, { config });
    seen.add(config);
    return { config, text };
  });
}
