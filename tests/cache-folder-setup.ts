// vitest globalSetup: one cache folder for the whole run (CKVC_CACHE, inherited by every worker and every process
// a test starts), so that tests never write into, or prune, the user's own ~/.cache/ckvc (compiled code, delta-base
// caches: spec/FORMAT.md §18), and every command's code is compiled once a run, not once a test file. Tests that
// exercise the cache folder's own rules set CKVC_CACHE, HOME and XDG_CACHE_HOME themselves.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export default function setup(): () => void {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-test-cache-'));
  const before = process.env.CKVC_CACHE;
  process.env.CKVC_CACHE = folder;
  return () => {
    if (before === undefined) delete process.env.CKVC_CACHE;
    else process.env.CKVC_CACHE = before;
    fs.rmSync(folder, { recursive: true, force: true });
  };
}
