// Temp folders for tests: every one made here is removed by cleanupTemp() (called from afterAll).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const tempRoots: string[] = [];

/** A fresh temp directory under os.tmpdir(); removed by cleanupTemp(). */
export function tempDir(prefix = 'ckvc-it-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempRoots.push(d);
  return d;
}

export function cleanupTemp(): void {
  while (tempRoots.length) {
    const d = tempRoots.pop()!;
    try {
      fs.chmodSync(d, 0o755);
    } catch {
      /* ignore */
    }
    fs.rmSync(d, { recursive: true, force: true });
  }
}
