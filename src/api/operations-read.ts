// The operations that read a store's data (checkout, cat, ls, diff, config, verify): loaded by the Store facade
// (./store.ts) on first use. Kept apart from committing and transfer, whose code (input formats, ingest, zlib,
// bundles, transports) a checkout or a verify would otherwise compile at every start (issue 12); grouped, not
// one module per operation, because each file the bundle splits off costs Node a resolve, a read and a compile.
export { checkout } from './checkout.js';
export { configDiff, configExtract, configLabel, configShow } from './config.js';
export { diff } from './diff.js';
export { cat, ls } from './inspect.js';
export { verifyStore } from '../store/verify-store.js';
