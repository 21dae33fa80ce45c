// A watch handle that exists before the watcher's code has loaded (Store.watch loads it on first use and must
// still hand back its handle at once). A stop or abort asked for in the meantime is passed on once it is there.
import type { WatchHandle, WatchSummary } from './watch-types.js';

export function deferredWatch(started: Promise<WatchHandle>): WatchHandle {
  let handle: WatchHandle | undefined;
  let pending: 'stop' | 'abort' | undefined;
  const done: Promise<WatchSummary> = started.then((h) => {
    handle = h;
    if (pending === 'abort') h.abort();
    else if (pending === 'stop') h.stop();
    return h.done;
  });
  return {
    stop: () => (handle ? handle.stop() : void (pending ??= 'stop')),
    abort: () => (handle ? handle.abort() : void (pending = 'abort')),
    get committing() {
      return handle?.committing;
    },
    done,
  };
}
