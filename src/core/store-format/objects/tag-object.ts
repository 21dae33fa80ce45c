// An annotated tag (spec/FORMAT.md §5.6): made when `ckvc tag` is given a message; plain tags are refs only.
import { decodeCanonical, encodeCanonical } from '../canonical-cbor.js';
import { idToBytes, type ObjectId } from '../object-id.js';
import { FieldReader } from './fields.js';

export interface TagObject {
  target: ObjectId;
  name: string;
  message: string;
  tagger: string;
  time: number;
}

export function encodeTag(t: TagObject): Uint8Array {
  return encodeCanonical({
    target: idToBytes(t.target),
    name: t.name,
    message: t.message,
    tagger: t.tagger,
    time: t.time,
  });
}

export function decodeTag(bytes: Uint8Array, where = 'tag object'): TagObject {
  const f = FieldReader.of(decodeCanonical(bytes, where), where);
  return {
    target: f.id('target'),
    name: f.string('name'),
    message: f.string('message'),
    tagger: f.string('tagger'),
    time: f.uint('time'),
  };
}
