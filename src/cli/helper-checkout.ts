// The helper server's one structured request (spec/HELPER.md §1.1): a whole-commit checkout that resolves the
// revision and writes its commit in one round trip, into a folder or into UNDER/<commit ID> (the Python helper's
// snapshot cache, whose folder name is only known once the revision is resolved). It is `ckvc checkout ID --to
// DIR [--force] --json` through the same API call, without the command-line parser, and with the server's memory
// of files it verified before, so that asking again for an unchanged snapshot does not re-read its files.
import type { CheckoutResult, DecodedObjects, VerifiedFiles } from '../api/index.js';
import { CkvcError } from '../core/errors.js';
import { loadStoreApi } from './context.js';

export interface CheckoutRequest {
  rev: string;
  /** Exactly one of `to` (the folder) and `under` (the folder holding one folder per commit ID). */
  to?: string;
  under?: string;
  force?: boolean;
  store?: string;
}

const FIELDS = new Set(['rev', 'to', 'under', 'force', 'store']);

function bad(message: string): CkvcError {
  return new CkvcError(
    'CKVC_BAD_ARGUMENT',
    `helper-server checkout request: ${message}; send {"rev": string, ` +
      '"to" or "under": string, "force"?: boolean, "store"?: string}',
    {},
  );
}

/** Checks the shape of a request's `checkout` object (what `ckvc checkout` would refuse is left to it). */
export function parseCheckoutRequest(value: unknown): CheckoutRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('not an object');
  const r = value as Record<string, unknown>;
  const unknown = Object.keys(r).find((k) => !FIELDS.has(k));
  if (unknown !== undefined) throw bad(`unknown field ${JSON.stringify(unknown)}`);
  const text = (k: string) => r[k] === undefined || (typeof r[k] === 'string' && r[k] !== '');
  if (typeof r.rev !== 'string' || r.rev === '' || !text('to') || !text('under') || !text('store')) {
    throw bad('rev, to, under and store must be non-empty strings');
  }
  if ((r.to === undefined) === (r.under === undefined)) throw bad('give exactly one of to and under');
  if (r.force !== undefined && typeof r.force !== 'boolean') throw bad('force must be true or false');
  return r as unknown as CheckoutRequest;
}

/** What the server keeps between checkout requests (spec/HELPER.md §4). */
export interface CheckoutMemory {
  verified: VerifiedFiles;
  decoded: DecodedObjects;
}

/** Runs the request in the current folder and environment (the server has set both up). */
export async function runCheckoutRequest(req: CheckoutRequest, memory: CheckoutMemory): Promise<CheckoutResult> {
  const { openStore } = await loadStoreApi();
  const store = await openStore(req.store, { decoded: memory.decoded });
  try {
    // The revision is resolved once, inside: the commit, not the moving name, is checked out, so a branch that
    // moves meanwhile cannot mix two commits in one folder (and UNDER/<ID> is that commit's folder).
    const into = req.under !== undefined ? { to: req.under, intoCommitFolder: true } : { to: req.to! };
    return await store.checkout({ rev: req.rev, ...into, force: req.force, verified: memory.verified });
  } finally {
    await store.close();
  }
}
