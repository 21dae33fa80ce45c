// `ckvc watch`: a settled file that is visibly unfinished is not committed. A pickle ends with the STOP opcode
// ('.'), so one cut short by a killed trainer or a slow disk does not; a JSON file that does not parse is still
// being written. (A local check on purpose: the format readers decide what a file holds, this only whether the
// writer is done.) Other files are judged by the settle rule alone.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

const PICKLE = /\.(pkl|pickle)$/i;
const JSON_FILE = /\.json$/i;
const MAX_JSON_CHECK = 64 * 1024 * 1024;
const STOP = 0x2e;

async function lastByte(p: string): Promise<number | undefined> {
  const fh = await fs.open(p, 'r');
  try {
    const size = (await fh.stat()).size;
    if (size === 0) return undefined;
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, size - 1);
    return b[0];
  } finally {
    await fh.close();
  }
}

/** Why the file at `p` is not finished yet, or undefined when nothing says so. */
export async function unfinishedFile(p: string): Promise<string | undefined> {
  try {
    if (PICKLE.test(p) && (await lastByte(p)) !== STOP) return 'a pickle that does not end with its STOP opcode';
    if (JSON_FILE.test(p)) {
      const st = await fs.stat(p);
      if (st.size > MAX_JSON_CHECK) return undefined;
      try {
        JSON.parse(await fs.readFile(p, 'utf8'));
      } catch {
        return 'a JSON file that does not parse';
      }
    }
  } catch {
    return undefined; // unreadable or gone: the commit reports it
  }
  return undefined;
}

/** The first unfinished file of a checkpoint (the file itself, or the files directly in its folder). */
export async function unfinishedCheckpoint(p: string, kind: 'file' | 'folder'): Promise<string | undefined> {
  if (kind === 'file') {
    const why = await unfinishedFile(p);
    return why && `${path.basename(p)} is ${why}`;
  }
  const entries = await fs.readdir(p, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    const why = await unfinishedFile(path.join(p, e.name));
    if (why) return `${e.name} is ${why}`;
  }
  return undefined;
}
