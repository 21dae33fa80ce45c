// vitest globalSetup: the base cache (spec/FORMAT.md §18) of every ckvc the tests start goes to one temp folder,
// removed at the end, not to the user's ~/.cache/ckvc. Tests that look at the cache set CKVC_CACHE_DIR themselves.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export default function setup(): () => void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-test-cache-'));
  process.env.CKVC_CACHE_DIR = dir;
  return () => fs.rmSync(dir, { recursive: true, force: true });
}
