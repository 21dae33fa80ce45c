// A remote that is another store on a reachable filesystem: the store-side service runs in this process, with
// the same quarantine and checks as over HTTP (the other store's data is no more trusted than a network's).
import { PassThrough } from 'node:stream';
import type { ObjectId } from '../core/store-format/object-id.js';
import { ObjectStore } from '../store/object-store.js';
import { StoreService, type RefChange } from './store-service.js';
import type { Transport } from './transport.js';

export class DirectoryTransport implements Transport {
  private constructor(
    readonly url: string,
    private readonly service: StoreService,
    private readonly who: string,
  ) {}

  static async open(dir: string, who: string): Promise<DirectoryTransport> {
    return new DirectoryTransport(dir, new StoreService(await ObjectStore.open(dir)), who);
  }

  refs() {
    return this.service.refs();
  }
  has(ids: ObjectId[]) {
    return this.service.has(ids);
  }
  chains(ids: ObjectId[]) {
    return this.service.chains(ids);
  }
  plan(wants: ObjectId[], haves: ObjectId[], filter?: string[]) {
    return this.service.plan(wants, haves, filter);
  }

  async fetchObjects<T>(
    ids: ObjectId[],
    receive: (source: import('node:stream').Readable) => Promise<T>,
    clientHolds?: ReadonlyMap<ObjectId, number>,
  ): Promise<T> {
    const pipe = new PassThrough({ highWaterMark: 1024 * 1024 });
    const producing = this.service.sendObjects(ids, pipe, clientHolds).then(
      () => {
        pipe.end();
      },
      (e) => {
        pipe.destroy(e as Error);
        throw e;
      },
    );
    const [, result] = await Promise.all([producing, receive(pipe)]);
    return result;
  }

  async sendObjects(write: (sink: import('node:stream').Writable) => Promise<void>) {
    const pipe = new PassThrough({ highWaterMark: 1024 * 1024 });
    const producing = write(pipe).then(
      () => {
        pipe.end();
      },
      (e) => {
        pipe.destroy(e as Error);
        throw e;
      },
    );
    const [, result] = await Promise.all([
      producing,
      this.service.receiveObjects(pipe, `objects received into ${this.url}`),
    ]);
    return result;
  }

  updateRefs(changes: RefChange[], force: boolean) {
    return this.service.updateRefs(changes, force, this.who);
  }
  close() {
    return this.service.store.close();
  }
}
