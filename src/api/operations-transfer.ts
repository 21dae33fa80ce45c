// The operations that move data between stores (bundles and remotes): loaded by the Store facade (./store.ts)
// on first use (see ./operations-read.ts for why they are grouped).
export { packBundle, pullBundle } from './bundle.js';
export { repair } from './repair.js';
export {
  addRemote,
  deleteOnRemote,
  fetchFromRemote,
  pullFromRemote,
  pushToRemote,
  remotes,
  removeRemote,
  setRemote,
} from './remote.js';
