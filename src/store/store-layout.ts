// Where things live inside a store (spec/FORMAT.md §1) and how a store is found and created.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import { checkCdcParams, DEFAULT_CDC, type CdcParams } from '../core/chunking/content-defined.js';
import type { FileRecipe } from '../core/store-format/objects/file-recipe.js';
import { MAX_OBJECT_BYTES } from '../core/store-format/pack-format.js';
import { fsyncDir, ioError, readFileIfExists, writeFileDurable } from './durable-fs.js';
import { makeFolderPath } from './folder-path.js';

export const STORE_DIR_NAME = '.ckvc';
export const STORE_FORMAT = 'ckvc-store';
/**
 * The newest store version this ckvc reads (FORMAT.md §1, §11): version 2 stores may hold version 2 packs
 * (codecs 5 and 6, §4.3), version 3 stores file recipes with JSON render parts (§5.3, JSON.md §4).
 */
export const STORE_VERSION = 3;
/** New stores start here; a store moves up when it first holds what needs a newer version. */
export const NEW_STORE_VERSION = 2;
export const PACK_V2_STORE_VERSION = 2;
export const JSON_RENDER_STORE_VERSION = 3;

export interface StoreConfig {
  format: typeof STORE_FORMAT;
  version: number;
  hash: 'blake3-256';
  tensorChunkSize: number;
  cdc: CdcParams;
}

export const DEFAULT_TENSOR_CHUNK_SIZE = 256 * 1024;

export class StoreLayout {
  constructor(readonly root: string) {}
  get configFile() {
    return path.join(this.root, 'config.json');
  }
  get packsDir() {
    return path.join(this.root, 'packs');
  }
  get indexDir() {
    return path.join(this.root, 'index');
  }
  get refsDir() {
    return path.join(this.root, 'refs');
  }
  get logsDir() {
    return path.join(this.root, 'logs');
  }
  get tmpDir() {
    return path.join(this.root, 'tmp');
  }
  get locksDir() {
    return path.join(this.root, 'locks');
  }
  get headFile() {
    return path.join(this.root, 'HEAD');
  }
  get aliasesDir() {
    return path.join(this.root, 'aliases');
  }
  get prunedDir() {
    return path.join(this.root, 'pruned');
  }
  get shallowDir() {
    return path.join(this.root, 'shallow');
  }
  get configLabelsFile() {
    return path.join(this.root, 'config-labels.json');
  }
  get remotesFile() {
    return path.join(this.root, 'remotes.json');
  }
  get remoteTokensFile() {
    return path.join(this.root, 'remote-tokens.json');
  }
  get gcLockFile() {
    return path.join(this.locksDir, 'gc.lock');
  }
  get refBatchLockFile() {
    return path.join(this.locksDir, 'refs.lock');
  }
  get writersDir() {
    return path.join(this.locksDir, 'writers');
  }
  get watchLocksDir() {
    return path.join(this.locksDir, 'watch');
  }
  /** Held by `ckvc watch` while it runs; branch names may hold '/', so the name is percent-encoded. */
  watchLockFile(branch: string) {
    return path.join(this.watchLocksDir, `${encodeURIComponent(branch)}.lock`);
  }
  packFile(packId: string) {
    return path.join(this.packsDir, `${packId}.pack`);
  }
  /** Damaged packs `ckvc repair` set aside (FORMAT.md §10.1): never read, kept for inspection. */
  get damagedDir() {
    return path.join(this.root, 'damaged');
  }
}

async function isStoreDir(dir: string): Promise<boolean> {
  try {
    return (
      (await fs.stat(path.join(dir, 'config.json'))).isFile() && (await fs.stat(path.join(dir, 'refs'))).isDirectory()
    );
  } catch {
    return false;
  }
}

/** --store DIR, else CKVC_DIR, else the nearest .ckvc upward from cwd. DIR may be the store itself or hold one. */
export async function findStore(explicit: string | undefined, cwd = process.cwd()): Promise<string> {
  const given = explicit ?? process.env.CKVC_DIR;
  if (given) {
    const abs = path.resolve(cwd, given);
    if (await isStoreDir(abs)) return abs;
    if (await isStoreDir(path.join(abs, STORE_DIR_NAME))) return path.join(abs, STORE_DIR_NAME);
    throw new CkvcError('CKVC_NO_STORE', `${abs} is not a ckvc store; create one with 'ckvc init ${given}'`, {
      path: abs,
    });
  }
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    if (await isStoreDir(path.join(dir, STORE_DIR_NAME))) return path.join(dir, STORE_DIR_NAME);
    if (path.dirname(dir) === dir) break;
  }
  throw new CkvcError(
    'CKVC_NO_STORE',
    `no ckvc store in ${cwd} or any parent directory; run 'ckvc init', or pass --store DIR or set CKVC_DIR`,
    { cwd },
  );
}

export async function readStoreConfig(layout: StoreLayout): Promise<StoreConfig> {
  const raw = await readFileIfExists(layout.configFile);
  let cfg: StoreConfig;
  try {
    cfg = JSON.parse(raw?.toString('utf8') ?? '') as StoreConfig;
  } catch {
    throw new CkvcError(
      'CKVC_NO_STORE',
      `${layout.configFile} is missing or not JSON; this is not a usable ckvc store`,
      { path: layout.configFile },
    );
  }
  if (cfg.format !== STORE_FORMAT)
    throw new CkvcError('CKVC_NO_STORE', `${layout.root} is not a ckvc store (config format "${String(cfg.format)}")`, {
      path: layout.root,
    });
  if (cfg.version > STORE_VERSION) {
    throw new CkvcError(
      'CKVC_UNSUPPORTED_VERSION',
      `store ${layout.root} has format version ${cfg.version}; this ckvc reads up to ${STORE_VERSION}: upgrade ckvc`,
      { path: layout.root, version: cfg.version },
    );
  }
  return cfg;
}

/**
 * Throws CKVC_BAD_ARGUMENT unless the store's chunking parameters can cut data: `tensorChunkSize` (0 would never end
 * a tensor's first chunk, and a chunk is an object, 64 MiB at most) and `cdc` (the chunker's own rules). Checked
 * when a commit starts, before anything is stored, not when the store opens: readers never need them (FORMAT.md
 * §1), so a hand-edited config.json leaves the store's history readable.
 */
export function checkChunkingConfig(cfg: StoreConfig, storeRoot: string): void {
  const file = path.join(storeRoot, 'config.json');
  const refuse = (what: string) =>
    new CkvcError('CKVC_BAD_ARGUMENT', `${file}: ${what}, so nothing can be committed to this store`, { path: file });
  const size = cfg.tensorChunkSize;
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_OBJECT_BYTES)
    throw refuse(
      `tensorChunkSize ${JSON.stringify(size)} is not a whole number of bytes from 1 to ${MAX_OBJECT_BYTES} (init writes 262144)`,
    );
  if (typeof cfg.cdc !== 'object' || cfg.cdc === null) throw refuse('cdc is not an object of min, avg and max');
  try {
    checkCdcParams(cfg.cdc);
  } catch (e) {
    throw e instanceof CkvcError ? refuse(`cdc ${JSON.stringify(cfg.cdc)}: ${e.message}`) : e;
  }
}

/** The store version a file recipe needs beyond what every pack needs; undefined when none. */
export function recipeStoreVersion(recipe: FileRecipe): number | undefined {
  return recipe.parts.some((p) => p.kind === 'tensor' && p.json) ? JSON_RENDER_STORE_VERSION : undefined;
}

/** The version each store root is known to be at least at, in this process. */
const upgraded = new Map<string, number>();

/**
 * Marks the store as at least `version` before a pack that needs it enters packs/ (version 2: any pack this
 * ckvc writes; version 3: one holding a file recipe with a JSON render part), so an older ckvc refuses the store
 * as a whole (CKVC_UNSUPPORTED_VERSION, "upgrade ckvc") instead of meeting records it cannot read.
 */
export async function upgradeStoreVersion(layout: StoreLayout, version = PACK_V2_STORE_VERSION): Promise<void> {
  if ((upgraded.get(layout.root) ?? 0) >= version) return;
  const cfg = await readStoreConfig(layout);
  if (cfg.version < version) {
    await writeFileDurable(layout.configFile, `${JSON.stringify({ ...cfg, version }, null, 2)}\n`);
  }
  upgraded.set(layout.root, Math.max(cfg.version, version));
}

/** Creates DIR/.ckvc. Returns false (and changes nothing) when a store is already there. */
export async function createStore(dir: string): Promise<{ root: string; created: boolean }> {
  const root = path.join(path.resolve(dir), STORE_DIR_NAME);
  if (await isStoreDir(root)) return { root, created: false };
  const layout = new StoreLayout(root);
  await makeFolderPath(root).catch((e) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR')
      throw new CkvcError(
        'CKVC_BAD_ARGUMENT',
        `cannot create a store in ${dir}: ${root} (or a folder above it) is a file or a broken link, not a folder; move it away first`,
        { path: root },
      );
    throw ioError(e, 'create', root);
  });
  for (const d of [
    layout.packsDir,
    layout.tmpDir,
    layout.locksDir,
    layout.writersDir,
    layout.logsDir,
    path.join(layout.refsDir, 'heads'),
    path.join(layout.refsDir, 'tags'),
  ]) {
    await fs.mkdir(d, { recursive: true }).catch((e) => {
      throw ioError(e, 'create', d);
    });
  }
  await writeFileDurable(layout.headFile, 'ref: refs/heads/main\n');
  const cfg: StoreConfig = {
    format: STORE_FORMAT,
    version: NEW_STORE_VERSION,
    hash: 'blake3-256',
    tensorChunkSize: DEFAULT_TENSOR_CHUNK_SIZE,
    cdc: DEFAULT_CDC,
  };
  // config.json last: its presence (with refs/) is what marks a finished store.
  await writeFileDurable(layout.configFile, `${JSON.stringify(cfg, null, 2)}\n`);
  await fsyncDir(path.dirname(root));
  return { root, created: true };
}

/** The IDs of the packs in packs/ (by file name; whether each is intact is verify's business). */
export async function listPackIds(layout: StoreLayout): Promise<Set<string>> {
  try {
    return new Set(
      (await fs.readdir(layout.packsDir)).filter((n) => /^[0-9a-f]{64}\.pack$/.test(n)).map((n) => n.slice(0, 64)),
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
    throw ioError(e, 'list', layout.packsDir);
  }
}
