// What `ckvc checkout` is asked (api/checkout.ts) and what it reports, shared by the whole-file and the --tensor
// checkout (api/checkout-tensors.ts).
import type { OtherFiles } from '../store/checkout-other-files.js';
import type { ConfigChange } from '../core/diff/config-delta.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { VerifiedFiles } from '../store/verified-files.js';
import type { RemoteCheckoutFetch } from './fetch-on-demand.js';

export interface CheckoutOptions {
  rev: string;
  to: string;
  paths?: string[];
  force?: boolean;
  /** The config the caller will load the checkpoint under: it must be the commit's (by canonical hash). */
  config?: string;
  allowConfigMismatch?: boolean;
  /**
   * Write only the tensors matching these globs, matched against the tensor name (and, for a glob holding a
   * ':', against FILE:NAME too); a glob starting with '!' excludes. A tensor is taken when it matches some include (or none are given)
   * and no exclude. Each file with a match becomes DIR/<path without extension>.safetensors.
   */
  tensors?: string[];
  progress?: (e: { path: string; bytes: number }) => void;
  /** What a long-lived process knows of files it hashed before (store/verified-files.ts): spares re-hashing. */
  verified?: VerifiedFiles;
  /** `to` holds one folder per commit: write into `to`/<commit ID> (the Python helper's snapshot cache). */
  intoCommitFolder?: boolean;
  /** With `tensors` and a REV `REMOTE/BRANCH`: fetch REMOTE first, filtered by those globs (the CLI's checkout). */
  fetch?: boolean;
}

export interface CheckoutResult {
  commit: ObjectId;
  to: string;
  /** With `tensors`: `source` is the commit's file the tensors came from, `tensors` how many it holds. */
  written: { path: string; bytes: number; source?: string; tensors?: number; replaced?: true }[];
  unchanged: string[];
  bytes: number;
  /** With `tensors`: every safetensors file of the selection, written now or found identical. */
  tensorFiles?: { path: string; source: string; bytes: number; tensors: string[]; written: boolean }[];
  /** Set when --allow-config-mismatch let a differing config through. */
  configMismatch?: { expected?: string; given: string; changes: ConfigChange[] };
  /** Temp files of an interrupted checkout found stale in the folders written to, and removed (spec/FORMAT.md §9.2). */
  removedTemps?: string[];
  /**
   * Temp files there younger than that, left in place: another checkout may be writing them, or a killed one left
   * them (removed once stale).
   */
  recentTemps?: { path: string; bytes: number }[];
  /** Files the folder holds that the commit does not (whole-commit checkouts): left as they are. */
  otherFiles?: OtherFiles;
  /** The fetch `fetch` made first (checkout REMOTE/BRANCH --tensor). */
  fetched?: RemoteCheckoutFetch;
}
