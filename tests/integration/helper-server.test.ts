// `ckvc helper-server` (spec/HELPER.md §1) through a real process: one JSON request per line, one reply per line,
// each command's output and exit code as `ckvc ARGV` in a process of its own gives them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ckvc } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { Server, testEnv } from '../helpers/helper-server.js';

let s: TestStore;
let server: Server;

beforeAll(() => {
  s = newStore();
  const ckpt = path.join(s.dir, 'ckpt');
  fs.mkdirSync(ckpt);
  for (let step = 1; step <= 3; step++) {
    fs.writeFileSync(path.join(ckpt, 'state.json'), JSON.stringify({ step }));
    s.ok(['commit', ckpt, '-b', 'run', '-m', `step ${step}`, '--step', String(step), '--metric', `loss=${1 / step}`]);
  }
  server = new Server();
});
afterAll(async () => {
  if (server.running.child.exitCode === null) await server.end();
  cleanupTemp();
});

describe('ckvc helper-server', () => {
  test('each reply holds the exit code and output a process of its own gives', async () => {
    const cases = [
      ['log', 'run', '--json'],
      ['log', 'run', '--oneline'],
      ['show', 'run~1', '--json'],
      ['branch', '--json'],
      ['show', 'nope', '--json'],
      ['show', 'nope'],
      ['frobnicate', '--json'],
      ['--version'],
    ];
    let id = 1;
    for (const argv of cases) {
      const alone = ckvc([...argv, '--store', s.store]);
      const reply = await server.request(id, [...argv, '--store', s.store], { env: testEnv() });
      expect(reply, argv.join(' ')).toEqual({ id, code: alone.code, stdout: alone.stdout, stderr: alone.stderr });
      id++;
    }
    const missing = await server.request(99, ['show', 'nope', '--json', '--store', s.store]);
    expect(missing.code).toBe(14);
    expect(JSON.parse(missing.stderr!).error.code).toBe('CKVC_UNKNOWN_REVISION');
  });

  test('cwd and env hold for one request only', async () => {
    const elsewhere = tempDir();
    const found = await server.request(1, ['branch', '--json'], { cwd: s.dir, env: testEnv() });
    expect(JSON.parse(found.stdout!).map((b: { name: string }) => b.name)).toEqual(['run']);
    const byEnv = await server.request(2, ['branch', '--json'], {
      cwd: elsewhere,
      env: testEnv({ CKVC_DIR: s.store }),
    });
    expect(byEnv.code).toBe(0);
    const after = await server.request(3, ['branch', '--json'], { cwd: elsewhere, env: testEnv() });
    expect(after.code).toBe(10);
    expect(JSON.parse(after.stderr!).error.code).toBe('CKVC_NO_STORE');
    const badCwd = await server.request(4, ['branch', '--json'], { cwd: path.join(elsewhere, 'missing') });
    expect(badCwd.error?.code).toBe('CKVC_BAD_ARGUMENT');
  });

  test('commands that stream, take the terminal or write bytes are refused without running', async () => {
    const argvs = [
      ['watch', s.dir],
      ['serve', '--stdio'],
      ['ui'],
      ['cat', 'run', 'state.json'],
      ['--store', s.store, 'helper-server'],
    ];
    for (const [i, argv] of argvs.entries()) {
      const refused = { reason: 'command', message: expect.any(String) };
      expect(await server.request(i, argv)).toEqual({ id: i, refused });
    }
    const fault = await server.request(9, ['log', '--json', '--store', s.store], {
      env: testEnv({ CKVC_FAULT: 'commit.objects', CKVC_TEST_FAULTS: '1' }),
    });
    expect(fault.refused?.reason).toBe('command');
  });

  test('a line that is not a request gets an error reply and the server goes on', async () => {
    server.send('garbage');
    expect((await server.next()).error?.code).toBe('CKVC_BAD_ARGUMENT');
    server.send(JSON.stringify({ id: 1, argv: 'log' }));
    const shape = await server.next();
    expect(shape.id).toBeNull();
    expect(shape.error?.code).toBe('CKVC_BAD_ARGUMENT');
    server.send('');
    const after = await server.request(2, ['branch', '--json', '--store', s.store]);
    expect(after.code).toBe(0);
  });

  test('output over the cap is dropped and the reply says the command ran', async () => {
    const small = new Server({ CKVC_TEST_HELPER_OUTPUT_CAP: '200' });
    const big = await small.request(1, ['log', '--json', '--store', s.store]);
    const refused = { reason: 'output-too-large', ran: true, message: expect.any(String) };
    expect(big).toEqual({ id: 1, code: 0, refused });
    const fits = await small.request(2, ['--version']);
    expect([fits.code, fits.stdout]).toEqual([0, ckvc(['--version']).stdout]);
    expect(await small.end()).toBe(0);
  });

  test('at the end of stdin the requests read are answered and the server exits 0', async () => {
    const last = new Server();
    last.send(JSON.stringify({ id: 1, argv: ['log', '--json', '--store', s.store] }));
    last.send(JSON.stringify({ id: 2, argv: ['branch', '--json', '--store', s.store] }));
    const code = await last.end();
    expect(code).toBe(0);
    expect([(await last.next()).id, (await last.next()).id]).toEqual([1, 2]);
    expect(last.running.child.exitCode).toBe(0);
  });
});
