// How a client talks to a remote store, whatever carries it (spec/PROTOCOL.md §2).
import type { Readable, Writable } from 'node:stream';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { RefUpdate } from './bundle-import.js';
import type { RefChange } from './request-body.js';

export interface Transport {
  readonly url: string;
  refs(): Promise<Record<string, ObjectId>>;
  has(ids: ObjectId[]): Promise<boolean[]>;
  plan(wants: ObjectId[], haves: ObjectId[]): Promise<{ objects: ObjectId[]; prerequisites: ObjectId[] }>;
  /** Asks for an objects-only bundle of `ids` and hands its byte stream to `receive`. */
  fetchObjects<T>(ids: ObjectId[], receive: (source: Readable) => Promise<T>): Promise<T>;
  /** Sends an objects-only bundle that `write` produces, of the objects `ids` (an S3 remote names its pack by them). */
  sendObjects(
    write: (sink: Writable) => Promise<void>,
    ids: ObjectId[],
  ): Promise<{ objects: number; newObjects: number }>;
  updateRefs(changes: RefChange[], force: boolean): Promise<RefUpdate[]>;
  close(): Promise<void>;
}
