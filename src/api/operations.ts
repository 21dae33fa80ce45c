// The operations the Store facade (./store.ts) loads on first use, in one module: the bundled CLI then loads them
// as one file instead of the dozens of shared chunks that one dynamic import per operation splits them into (each
// file costs Node a resolve, a read and a compile).
export { packBundle, pullBundle } from './bundle.js';
export { checkout } from './checkout.js';
export { commit } from './commit.js';
export { commitDryRun } from './commit-dry-run.js';
export { configDiff, configExtract, configLabel, configShow } from './config.js';
export { diff } from './diff.js';
export { gc } from './gc.js';
export { cat, ls } from './inspect.js';
export { prune } from './prune.js';
export { addRemote, fetchFromRemote, pullFromRemote, pushToRemote, remotes, removeRemote } from './remote.js';
export { unprune } from './unprune.js';
export { watch } from './watch/watcher.js';
export { verifyStore } from '../store/verify-store.js';
