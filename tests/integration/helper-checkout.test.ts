// The helper server's structured checkout (spec/HELPER.md §1.1, §4) through a real process: it answers what
// `ckvc checkout ID --to DIR --json` answers, sees commits other processes make between two requests, and never
// vouches for a file that changed since it hashed it, even with its modification time put back.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { okJson } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { sleep } from '../helpers/async-tasks.js';
import { Server, testEnv } from '../helpers/helper-server.js';

let s: TestStore;
let ckpt: string;
let server: Server;

/** Commits `content` as w.bin on branch run from a process of its own; returns the commit ID. */
function commitFromAnotherProcess(content: string): string {
  fs.writeFileSync(path.join(ckpt, 'w.bin'), content);
  return s.json<{ id: string }>(['commit', ckpt, '-b', 'run', '-m', content]).id;
}

beforeAll(() => {
  s = newStore();
  ckpt = path.join(s.dir, 'ckpt');
  fs.mkdirSync(ckpt);
  server = new Server();
});
afterAll(async () => {
  if (server.running.child.exitCode === null) await server.end();
  cleanupTemp();
});

describe('helper-server checkout request', () => {
  test('answers as `ckvc checkout ID --to DIR --json` does, into a folder or UNDER/<commit ID>', async () => {
    const id = commitFromAnotherProcess('first');
    const under = tempDir();
    const reply = await server.checkout(1, { rev: 'run', under, store: s.store }, { env: testEnv() });
    const folder = path.join(under, id);
    const alone = tempDir();
    const expected = okJson(['checkout', id, '--to', alone, '--json', '--store', s.store]);
    expect(reply).toEqual({ id: 1, code: 0, stderr: '', result: { ...expected, to: folder } });
    expect(fs.readFileSync(path.join(folder, 'w.bin'), 'utf8')).toBe('first');
    const again = await server.checkout(2, { rev: 'run', to: alone, store: s.store }, { env: testEnv() });
    expect(again.result).toEqual({ commit: id, to: alone, written: [], unchanged: ['w.bin'], bytes: 0 });
  });

  test('a commit another process makes between two requests is what the second one checks out', async () => {
    const under = tempDir();
    const before = commitFromAnotherProcess('before');
    expect((await server.checkout(1, { rev: 'run', under, store: s.store })).result?.commit).toBe(before);
    const after = commitFromAnotherProcess('after, and longer');
    const reply = await server.checkout(2, { rev: 'run', under, store: s.store });
    expect(reply.result?.commit).toBe(after);
    expect(fs.readFileSync(path.join(under, after, 'w.bin'), 'utf8')).toBe('after, and longer');
    expect(fs.readFileSync(path.join(under, before, 'w.bin'), 'utf8')).toBe('before');
  });

  test('a file changed after it was verified is found, even at the same size and modification time', async () => {
    commitFromAnotherProcess('12345678');
    const to = tempDir();
    const file = path.join(to, 'w.bin');
    expect((await server.checkout(1, { rev: 'run', to, store: s.store })).result?.written).toHaveLength(1);
    await sleep(250); // past the racy window: the next hash is remembered, the one after answers from memory
    expect((await server.checkout(2, { rev: 'run', to, store: s.store })).result?.unchanged).toEqual(['w.bin']);
    expect((await server.checkout(3, { rev: 'run', to, store: s.store })).result?.unchanged).toEqual(['w.bin']);
    const { atime, mtime } = fs.statSync(file);
    fs.writeFileSync(file, '87654321');
    fs.utimesSync(file, atime, mtime);
    const refused = await server.checkout(4, { rev: 'run', to, store: s.store });
    expect(refused.error?.code).toBe('CKVC_WOULD_OVERWRITE');
    expect(refused.error?.data?.paths).toEqual([file]);
    const forced = await server.checkout(5, { rev: 'run', to, store: s.store, force: true });
    expect(forced.result?.written).toEqual([{ path: 'w.bin', bytes: 8, replaced: true }]);
    expect(fs.readFileSync(file, 'utf8')).toBe('12345678');
  });

  test('errors are replies with the request id; a malformed request is a bad request', async () => {
    const unknown = await server.checkout(1, { rev: 'nope', under: tempDir(), store: s.store });
    expect(unknown.id).toBe(1);
    expect(unknown.error?.code).toBe('CKVC_UNKNOWN_REVISION');
    for (const bad of [
      { rev: 'run' },
      { rev: 'run', to: 'a', under: 'b' },
      { rev: '', to: 'a' },
      { rev: 'run', to: 'a', force: 'yes' },
      { rev: 'run', to: 'a', extra: 1 },
      'run',
    ]) {
      const reply = await server.checkout(2, bad as Record<string, unknown>);
      expect(reply.id, JSON.stringify(bad)).toBeNull();
      expect(reply.error?.code).toBe('CKVC_BAD_ARGUMENT');
    }
    server.send(JSON.stringify({ id: 3, argv: ['log'], checkout: { rev: 'run', to: 'a' } }));
    expect((await server.next()).error?.code).toBe('CKVC_BAD_ARGUMENT');
    const fault = await server.checkout(
      4,
      { rev: 'run', to: tempDir(), store: s.store },
      { env: testEnv({ CKVC_FAULT: 'checkout.write', CKVC_TEST_FAULTS: '1' }) },
    );
    expect(fault.refused?.reason).toBe('command');
  });
});
