// How a client talks to a remote store, whatever carries it (spec/PROTOCOL.md §2).
import type { Readable, Writable } from 'node:stream';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ChainInfo } from '../store/delta-chains.js';
import type { RefUpdate } from './bundle-import.js';
import type { RefChange } from './request-body.js';

/** A ref update as a remote reports it: `new` null for a ref the push deleted. */
export type RemoteRefUpdate = Omit<RefUpdate, 'new'> & { new: ObjectId | null };

export interface Plan {
  objects: ObjectId[];
  prerequisites: ObjectId[];
  /** With a filter: the commits among `objects` (the ones the filter applied to). */
  commits?: ObjectId[];
  /**
   * The stored bytes of each of `objects`, when the remote says (PROTOCOL.md §2): a fetch then asks for batches
   * of 64 MiB growing to 512 MiB, so that a re-run after an interruption asks again for at most one. An S3 remote
   * gives each object its share of its pack's 64 MiB bound instead (spec/S3.md §3): batches end where packs do.
   */
  sizes?: number[];
  /**
   * True when `objects` is everything the remote holds, not a walk from the wants (S3: no server to walk): the
   * fetch then keeps back the data this store released (released-data.ts).
   */
  unwalked?: boolean;
}

export interface Transport {
  readonly url: string;
  refs(): Promise<Record<string, ObjectId>>;
  has(ids: ObjectId[]): Promise<boolean[]>;
  /**
   * How the remote stores each object as far as delta coding goes (PROTOCOL.md §2 `chains`; null: not held);
   * undefined when it cannot say (a server that predates the request, an S3 remote): transfers are then not thin.
   */
  chains(ids: ObjectId[]): Promise<(ChainInfo | null)[] | undefined>;
  /**
   * With `filter` (tensor globs, PROTOCOL.md §4 fetch --filter), only the data of the tensors it selects is
   * planned, and the answer lists the commits among the objects.
   */
  plan(wants: ObjectId[], haves: ObjectId[], filter?: string[]): Promise<Plan>;
  /**
   * Asks for an objects-only bundle of `ids` and hands its byte stream to `receive`; `clientHolds` (chunks held
   * here with their chain depth) lets the remote send it thin (BUNDLE.md §5).
   */
  fetchObjects<T>(
    ids: ObjectId[],
    receive: (source: Readable) => Promise<T>,
    clientHolds?: ReadonlyMap<ObjectId, number>,
  ): Promise<T>;
  /** Sends an objects-only bundle that `write` produces, of the objects `ids` (an S3 remote names its pack by them). */
  sendObjects(
    write: (sink: Writable) => Promise<void>,
    ids: ObjectId[],
  ): Promise<{ objects: number; newObjects: number }>;
  updateRefs(changes: RefChange[], force: boolean): Promise<RemoteRefUpdate[]>;
  /**
   * Bytes this transport took from the network, when that can be more than it handed on (S3 sends a pack whole,
   * or ranges of it with what lies between close records): the user pays for these too.
   */
  bytesDownloaded?(): number;
  close(): Promise<void>;
}
