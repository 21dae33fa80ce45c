// What is SSH's own (spec/PROTOCOL.md §1, §5); the behaviour every transport shares is in
// transport-conformance.test.ts. `ckvc serve --stdio` speaks plain HTTP/1.1 on its pipes with the caps of
// `ckvc serve`; scp-like addresses mean SSH and a folder that reads like one is refused; a far side without
// ckvc is named with the fix; a push killed mid-transfer leaves the remote as it was, and a re-run completes.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cliEnv, describeRun, errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { checkoutDiff, newStore, type TestStore } from '../helpers/test-store.js';
import { hashTree } from '../helpers/snapshots.js';
import { randomFloat32, safetensorsBytes } from '../helpers/data.js';
import { HOST_ALIAS, startSshd, type Sshd } from '../helpers/sshd.js';

let sshd: Sshd;
let S: TestStore; // the far store
let main: string;
let work: string;

beforeAll(async () => {
  sshd = await startSshd();
  work = tempDir('ckvc-ssh-work-');
  S = newStore('ckvc-ssh-far-');
  const dir = path.join(work, 'ck');
  fs.mkdirSync(dir);
  const w = { dtype: 'F32', shape: [64, 64], bytes: randomFloat32(5, 64 * 64) };
  fs.writeFileSync(path.join(dir, 'model.safetensors'), safetensorsBytes({ w }));
  main = (await S.jsonAsync<{ id: string }>(['commit', dir, '-b', 'main', '-m', 'one'])).id;
});
afterAll(async () => {
  await sshd?.stop();
  cleanupTemp();
});

/** Runs `ckvc serve --stdio STORE ...extra` with `input` on stdin; resolves with its exit code and output. */
function serveStdio(input: Buffer, extra: string[] = []): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--stdio', S.store, ...extra], { env: cliEnv() });
  let out = '';
  let err = '';
  child.stdout.setEncoding('latin1').on('data', (d: string) => {
    out += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  child.stdin.end(input);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
}

describe('ckvc serve --stdio', () => {
  it('answers HTTP/1.1 requests in order on one connection and exits 0 when stdin ends', async () => {
    const body = JSON.stringify({ ids: [main, '0'.repeat(64)] });
    const r = await serveStdio(
      Buffer.from(
        'GET /v1/refs HTTP/1.1\r\nHost: stdio\r\n\r\n' +
          'POST /v1/has HTTP/1.1\r\nHost: stdio\r\nContent-Type: application/json\r\n' +
          `Content-Length: ${body.length}\r\n\r\n${body}`,
      ),
    );
    expect(r.code, r.err).toBe(0);
    const replies = r.out.split(/HTTP\/1\.1 /).filter(Boolean);
    expect(replies.map((x) => x.slice(0, 3))).toEqual(['200', '200']);
    expect(replies[0]).toContain(JSON.stringify({ refs: { 'refs/heads/main': main } }));
    expect(replies[1]).toContain('{"has":[true,false]}');
  });

  it('has the caps of ckvc serve (an oversize body is 400 before it is read) and --read-only refuses writes (403)', async () => {
    const big = await serveStdio(
      Buffer.from('POST /v1/has HTTP/1.1\r\nHost: stdio\r\nContent-Length: 99999999\r\n\r\n'),
    );
    expect(big.out).toMatch(/^HTTP\/1\.1 400/);
    expect(big.out).toContain('"code":"CKVC_BAD_BUNDLE"');
    const body = JSON.stringify({ changes: [{ name: 'refs/heads/x', old: null, new: main }] });
    const request = `POST /v1/update-refs HTTP/1.1\r\nHost: stdio\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const ro = await serveStdio(Buffer.from(request), ['--read-only']);
    expect(ro.out).toMatch(/^HTTP\/1\.1 403/);
    expect(ro.out).toContain('"code":"CKVC_UNAUTHORIZED"');
    expect(S.ref('refs/heads/x')).toBeUndefined();
  });
});

describe('SSH remote addresses', () => {
  it('scp-like [user@]host:/path is SSH: stored as ssh://, and fetch works through it', async () => {
    const L = newStore('ckvc-ssh-scp-');
    const add = await L.jsonAsync([
      'remote',
      'add',
      'far',
      `${HOST_ALIAS}:${S.store}`,
      '--remote-ckvc',
      sshd.remoteCkvc,
    ]);
    expect(add).toMatchObject({ url: `ssh://${HOST_ALIAS}${S.store}`, remoteCkvc: sshd.remoteCkvc });
    const f = await L.jsonAsync(['fetch', 'far'], { env: sshd.env });
    expect(f.refs).toEqual([expect.objectContaining({ name: 'refs/remotes/far/main', new: main })]);
  });

  it('a folder named like user@host:path is refused with the ./ hint (15); ./user@host:path is that folder', async () => {
    const L = newStore('ckvc-ssh-lookalike-');
    const F = newStore('ckvc-ssh-lookalike-target-');
    fs.symlinkSync(F.dir, path.join(L.dir, 'me@box:store'));
    const r = await L.runAsync(['remote', 'add', 'x', 'me@box:store'], { cwd: L.dir });
    expect(r.code, describeRun(r)).toBe(15);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
    expect(r.stderr).toContain('./me@box:store');
    const ok = await L.jsonAsync(['remote', 'add', 'x', './me@box:store'], { cwd: L.dir });
    expect(ok.url).toBe(path.join(L.dir, 'me@box:store'));
  });

  it('--remote-ckvc is for SSH remotes only (2)', async () => {
    const L = newStore('ckvc-ssh-rc-');
    const r = await L.runAsync(['remote', 'add', 'h', 'http://127.0.0.1:1/', '--remote-ckvc', 'x']);
    expect(r.code, describeRun(r)).toBe(2);
  });
});

describe('ssh options', () => {
  it('a client config made for interactive logins (pty, RemoteCommand, LocalCommand, compression) does not reach the stream: push and fetch round trip', async () => {
    // Each of the first three broke the connection before ckvc passed its own session options (exit 22).
    const config = sshd.env.CKVC_SSH!.split(' ')[2]!;
    const interactive = path.join(work, 'ssh_config_interactive');
    const lines = ['RequestTTY force', 'RemoteCommand echo not-ckvc', 'PermitLocalCommand yes', 'LocalCommand echo hi'];
    fs.writeFileSync(
      interactive,
      fs.readFileSync(config, 'utf8').replace('Host *\n', `Host *\n${[...lines, 'Compression yes'].join('\n')}\n`),
    );
    const env = { CKVC_SSH: `ssh -F ${interactive}` };
    const R = newStore('ckvc-ssh-opts-r-');
    await S.jsonAsync(['remote', 'add', 'opts', sshd.url(R.store), '--remote-ckvc', sshd.remoteCkvc]);
    const pushed = await S.jsonAsync(['push', 'opts', 'main'], { env });
    expect(pushed.refs).toEqual([expect.objectContaining({ name: 'refs/heads/main', new: main })]);
    const L = newStore('ckvc-ssh-opts-l-');
    await L.jsonAsync(['remote', 'add', 'far', sshd.url(R.store), '--remote-ckvc', sshd.remoteCkvc]);
    const f = await L.jsonAsync(['fetch', 'far'], { env });
    expect(f.refs).toEqual([expect.objectContaining({ name: 'refs/remotes/far/main', new: main })]);
    expect(await checkoutDiff(L, 'far/main', hashTree(path.join(work, 'ck')))).toEqual([]);
  });
});

describe('SSH failures', () => {
  it("no ckvc on the far side: 22, naming --remote-ckvc; no store at the path: 22 with the far side's message", async () => {
    const L = newStore('ckvc-ssh-nockvc-');
    await L.jsonAsync(['remote', 'add', 'far', sshd.url(S.store), '--remote-ckvc', '/nonexistent/bin/ckvc']);
    const r = await L.runAsync(['fetch', 'far'], { env: sshd.env });
    expect(r.code, describeRun(r)).toBe(22);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_REMOTE']);
    expect(r.stderr).toContain('--remote-ckvc');
    await L.jsonAsync(['remote', 'add', 'nostore', sshd.url('/nonexistent/store'), '--remote-ckvc', sshd.remoteCkvc]);
    const n = await L.runAsync(['fetch', 'nostore'], { env: sshd.env });
    expect(n.code, describeRun(n)).toBe(22);
    expect(n.stderr).toContain('/nonexistent/store'); // the far side's own message comes through
  });

  it('a refused login says what ssh said (21)', async () => {
    const L = newStore('ckvc-ssh-refused-');
    await L.jsonAsync(['remote', 'add', 'far', sshd.url(S.store), '--remote-ckvc', sshd.remoteCkvc]);
    const r = await L.runAsync(['fetch', 'far'], { env: sshd.wrongKeyEnv });
    expect(r.code, describeRun(r)).toBe(21);
    expect(r.stderr).toMatch(/Permission denied/);
  });

  it('a push killed mid-transfer leaves the remote branch and quarantine as they were; a re-run completes byte-identical', async () => {
    const A = newStore('ckvc-ssh-kill-a-');
    const R = newStore('ckvc-ssh-kill-r-');
    const dir = path.join(work, 'big');
    fs.mkdirSync(dir);
    const tensor = (i: number) => ({ dtype: 'F32', shape: [1024, 1024], bytes: randomFloat32(100 + i, 1024 * 1024) });
    const tensors = Object.fromEntries([0, 1, 2, 3].map((i) => [`t${i}`, tensor(i)]));
    fs.writeFileSync(path.join(dir, 'model.safetensors'), safetensorsBytes(tensors));
    const c = (await A.jsonAsync<{ id: string }>(['commit', dir, '-b', 'main', '-m', 'big'])).id;
    await A.jsonAsync(['remote', 'add', 'far', sshd.url(R.store), '--remote-ckvc', sshd.remoteCkvc]);
    const push = A.start(['push', 'far', 'main'], { env: sshd.env });
    const tmp = path.join(R.store, 'tmp');
    const incoming = () => fs.readdirSync(tmp).some((n) => n.startsWith('quarantine-'));
    for (let i = 0; i < 600 && !incoming(); i++) await new Promise((r) => setTimeout(r, 25));
    push.kill();
    const killed = await push.done;
    expect(killed.signal ?? killed.code, describeRun(killed)).not.toBe(0);
    expect(R.ref('refs/heads/main')).toBeUndefined();
    for (let i = 0; i < 200 && incoming(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(incoming()).toBe(false); // the far server saw its stdin end and dropped the quarantine
    const again = await A.jsonAsync(['push', 'far', 'main'], { env: sshd.env });
    expect(again.refs).toEqual([expect.objectContaining({ new: c })]);
    expect(R.ref('refs/heads/main')).toBe(c);
    expect(await checkoutDiff(R, 'main', hashTree(dir))).toEqual([]);
  });
});
