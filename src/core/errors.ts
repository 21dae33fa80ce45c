// One error class for everything a user can see. The code is stable (scripts match on it), the exit code
// comes from the code, and `data` carries the structured facts (path, revision, expected/actual...).
// spec/EXIT_CODES.md documents this table; tests/unit/exit-codes.test.ts keeps the two in step.

export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  NO_STORE: 10,
  LOCKED: 11,
  CORRUPT: 12,
  REF_CONFLICT: 13,
  NOT_FOUND: 14,
  BAD_INPUT: 15,
  INPUT_CHANGED: 16,
  WOULD_OVERWRITE: 17,
  UNSUPPORTED: 18,
  PRUNED: 19,
  CONFIG_MISMATCH: 20,
  REMOTE_REFUSED: 21,
  REMOTE_FAILED: 22,
  NOT_FETCHED: 23,
  INTERRUPTED: 130,
} as const;

export const ERROR_CODES = {
  CKVC_INTERNAL: { exit: EXIT.ERROR, summary: 'an unexpected internal error (a bug: please report it)' },
  CKVC_IO: {
    exit: EXIT.ERROR,
    summary: 'the operating system refused a read or write (permissions, disk full, I/O error)',
  },
  CKVC_USAGE: {
    exit: EXIT.USAGE,
    summary: 'the command line is malformed (unknown option, missing argument, a single-valued option given twice)',
  },
  CKVC_NO_STORE: { exit: EXIT.NO_STORE, summary: 'no ckvc store was found where one was expected' },
  CKVC_LOCKED: { exit: EXIT.LOCKED, summary: 'a lock stayed held by another live process past the wait limit' },
  CKVC_CORRUPT_OBJECT: { exit: EXIT.CORRUPT, summary: 'an object failed its hash check or does not decode' },
  CKVC_CORRUPT_PACK: { exit: EXIT.CORRUPT, summary: 'a pack file is truncated or its structure is damaged' },
  CKVC_CORRUPT_REF: { exit: EXIT.CORRUPT, summary: 'a ref file does not hold a valid object ID or symbolic ref' },
  CKVC_MISSING_OBJECT: { exit: EXIT.CORRUPT, summary: 'an object that history needs is not in the store' },
  CKVC_VERIFY_FAILED: {
    exit: EXIT.CORRUPT,
    summary: 'verify found one or more problems (each listed with its own code)',
  },
  CKVC_NOT_REPAIRED: {
    exit: EXIT.CORRUPT,
    summary: 'repair could not make the store whole: no source held some lost objects',
  },
  CKVC_FILE_HASH_MISMATCH: { exit: EXIT.CORRUPT, summary: 'a rebuilt file does not match the hash recorded at commit' },
  CKVC_REF_CONFLICT: {
    exit: EXIT.REF_CONFLICT,
    summary: 'a ref moved under us (compare-and-swap failed) or already exists',
  },
  CKVC_UNKNOWN_REVISION: { exit: EXIT.NOT_FOUND, summary: 'a revision names nothing in the store' },
  CKVC_AMBIGUOUS_REVISION: { exit: EXIT.NOT_FOUND, summary: 'a short ID prefix matches more than one object' },
  CKVC_PATH_NOT_FOUND: { exit: EXIT.NOT_FOUND, summary: 'a path is not in the given commit' },
  CKVC_NO_METRIC: { exit: EXIT.NOT_FOUND, summary: 'no commit that was searched records the metric asked for' },
  CKVC_EMPTY_BRANCH: { exit: EXIT.NOT_FOUND, summary: 'the branch has no commits yet' },
  CKVC_INPUT_NOT_FOUND: { exit: EXIT.BAD_INPUT, summary: 'an input path does not exist or cannot be read' },
  CKVC_BAD_ARGUMENT: { exit: EXIT.BAD_INPUT, summary: 'an argument has an invalid value' },
  CKVC_BAD_REF_NAME: { exit: EXIT.BAD_INPUT, summary: 'a branch or tag name is not allowed' },
  CKVC_BAD_METRIC: { exit: EXIT.BAD_INPUT, summary: 'a metric is not KEY=NUMBER' },
  CKVC_BAD_CONFIG: { exit: EXIT.BAD_INPUT, summary: 'a config file does not parse as YAML or JSON' },
  CKVC_BAD_SAFETENSORS: { exit: EXIT.BAD_INPUT, summary: 'a .safetensors file breaks the format rules' },
  CKVC_BAD_TENSOR_FILE: {
    exit: EXIT.BAD_INPUT,
    summary: 'a PyTorch zip, .npy or .npz file breaks its format or is unsafe to read (traversal names, lying sizes)',
  },
  CKVC_INPUT_CHANGED: { exit: EXIT.INPUT_CHANGED, summary: 'an input file changed while it was being committed' },
  CKVC_WOULD_OVERWRITE: { exit: EXIT.WOULD_OVERWRITE, summary: 'checkout would overwrite a different existing file' },
  CKVC_UNSUPPORTED_VERSION: {
    exit: EXIT.UNSUPPORTED,
    summary: 'the store, pack or object uses a newer format version',
  },
  CKVC_PRUNED: {
    exit: EXIT.PRUNED,
    summary: "a file's tensor data was released by `ckvc prune`; the message names the tensors and when",
  },
  CKVC_CONFIG_MISMATCH: {
    exit: EXIT.CONFIG_MISMATCH,
    summary: "the config given to `checkout --config` differs from the commit's (the differing keys are listed)",
  },
  CKVC_BAD_BUNDLE: {
    exit: EXIT.CORRUPT,
    summary: 'a bundle, or data received from a remote, is truncated, damaged or inconsistent (nothing was imported)',
  },
  CKVC_MISSING_PREREQUISITE: {
    exit: EXIT.NOT_FOUND,
    summary: 'a bundle or push needs commits the receiving store does not have (they are named)',
  },
  CKVC_SHALLOW_HISTORY: {
    exit: EXIT.NOT_FOUND,
    summary:
      'a push needs history this shallow store does not have (it stops at a graft) and the remote lacks; push --depth N, or fetch the full history first',
  },
  CKVC_NON_FAST_FORWARD: {
    exit: EXIT.REF_CONFLICT,
    summary: "the update would drop commits from the other side's branch; fetch and merge first, or --force",
  },
  CKVC_UNKNOWN_REMOTE: { exit: EXIT.NOT_FOUND, summary: 'no remote has that name' },
  CKVC_UNAUTHORIZED: {
    exit: EXIT.REMOTE_REFUSED,
    summary:
      'the remote or the web page refused: a write needs a valid token, the server is read-only, ssh was refused the login (PROTOCOL.md §5), or a page request came with a foreign Host or without the token',
  },
  CKVC_REMOTE: {
    exit: EXIT.REMOTE_FAILED,
    summary:
      'the remote could not be reached (for SSH also: ssh could not start, or no ckvc or no store on the far side) or answered outside the protocol',
  },
  CKVC_REMOTE_BUSY: {
    exit: EXIT.REMOTE_FAILED,
    summary:
      'the remote had no room for the request (too much request data in flight) and still had none after the retries',
  },
  CKVC_NO_CONDITIONAL_WRITES: {
    exit: EXIT.REMOTE_FAILED,
    summary:
      "the S3 service ignores conditional writes, so refs cannot be moved safely there; 'ckvc remote set NAME --single-writer' (or add it so) pushes anyway",
  },
  CKVC_NOT_FETCHED: {
    exit: EXIT.NOT_FETCHED,
    summary:
      'the data asked for was left out by a partial fetch (`fetch --filter`) and could not be fetched from its remote now, or a pack or push would need it, or `remote remove` would drop the only remote holding it; the message names the remote and how to fetch it',
  },
  CKVC_INTERRUPTED: { exit: EXIT.INTERRUPTED, summary: 'interrupted by a signal; nothing was half-written' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Is `code` one of ERROR_CODES (own keys only: a code received as "constructor" is not)? */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** Facts an error carries for the user and for --json beyond the typed fields: free-form, never read by code. */
export type ErrorFacts = Record<string, unknown>;

/** A lock's holder as recorded in its lock file. */
export interface LockHolderFacts {
  pid?: number;
  host?: string;
}

/**
 * The fields that control flow reads, per code: the place that throws and the place that decides on the error
 * are checked against one declaration, so they cannot drift apart on a name or a type. Read them after
 * narrowing with `isCkvcError(e, CODE)`.
 */
export interface ErrorDataByCode {
  CKVC_IO: { path?: string; errno?: string };
  CKVC_LOCKED: { path?: string; owner?: LockHolderFacts };
  CKVC_MISSING_OBJECT: { pack?: string };
  CKVC_UNKNOWN_REVISION: { branch?: string };
  CKVC_NO_METRIC: { branch?: string };
  CKVC_BAD_REF_NAME: { ref?: string };
  CKVC_REF_CONFLICT: { ref?: string; expected?: string | null; actual?: string | null };
  CKVC_BAD_ARGUMENT: { path?: string };
  CKVC_INPUT_NOT_FOUND: { path?: string };
  CKVC_BAD_SAFETENSORS: { path?: string };
  CKVC_BAD_TENSOR_FILE: { path?: string };
}

/** Any code may say which refs a batch update moved before it failed (spec/FORMAT.md §6.5). */
export interface RefMoveFacts {
  moved?: string[];
  notMoved?: string[];
}

export type ErrorData<C extends ErrorCode = ErrorCode> = (C extends keyof ErrorDataByCode
  ? ErrorDataByCode[C]
  : unknown) &
  RefMoveFacts &
  ErrorFacts;

export class CkvcError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly data: ErrorData<C>;
  /** Already shown to the user in full (verify lists its problems itself): the CLI adds no error line. */
  readonly reported: boolean;

  constructor(code: C, message: string, data?: ErrorData<C>, options?: { cause?: unknown; reported?: boolean }) {
    super(message, options);
    this.name = 'CkvcError';
    this.code = code;
    this.data = data ?? ({} as ErrorData<C>);
    this.reported = options?.reported ?? false;
  }

  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, exit: this.exitCode, data: this.data };
  }
}

export function isCkvcError<C extends ErrorCode = ErrorCode>(e: unknown, code?: C): e is CkvcError<C> {
  return e instanceof CkvcError && (code === undefined || e.code === code);
}
