// The operations that write a store from local input or rules (commit, prune, gc): loaded by the Store facade
// (./store.ts) on first use, apart from the reading ones (see ./operations-read.ts for why they are grouped).
export { commit } from './commit.js';
export { commitDryRun } from './commit-dry-run.js';
export { gc } from './gc.js';
export { prune } from './prune.js';
export { unprune } from './unprune.js';
