// What an objects-only bundle (BUNDLE.md: no refs) received for a request must be, wherever it comes from: the
// objects a fetch asked a remote for, a pack of an S3 remote against its listing, a push body. One check, so that
// every receiver holds a sender to the same rule; each caller words the failure for its own sender.
import { bad } from '../core/store-format/bundle-format.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ReceivedBundle } from './bundle-reader.js';

/** Refuses a bundle that carries refs (CKVC_BAD_BUNDLE): ref updates are a request of their own. */
export function refuseRefs(rb: ReceivedBundle, where: string): void {
  if (rb.header.refs.length) throw bad(where, 'carries refs; ref updates are a separate request');
}

/** The objects `rb` holds that `expected` does not name, and those `expected` names that `rb` lacks. */
export function againstExpected(
  rb: ReceivedBundle,
  expected: readonly ObjectId[],
): { extra: ObjectId[]; missing: ObjectId[] } {
  const named = new Set(expected);
  return {
    extra: [...rb.ids].filter((id) => !named.has(id)),
    missing: [...named].filter((id) => !rb.ids.has(id)),
  };
}
