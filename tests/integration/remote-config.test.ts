// Remote settings kept in the store (spec/PROTOCOL.md §1): a token saved by `remote add --token-file` (mode 0600,
// used by later pushes, dropped with the remote) and remote-tracking branches listed by `branch -r` / `-a`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { serve, stopServers } from '../helpers/servers.js';

const TOKEN = 'saved-token-4f9a1c';
let A: TestStore; // pushes
let R: TestStore; // served over HTTP
let url: string;
let tokenFile: string;
let id: string;

beforeAll(async () => {
  const work = tempDir('ckvc-rc-work-');
  tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, `${TOKEN}\n`);
  [A, R] = [newStore('ckvc-rc-a-'), newStore('ckvc-rc-r-')];
  const dir = path.join(work, 'ck');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.alloc(4096, 7));
  id = (await A.jsonAsync<{ id: string }>(['commit', dir, '-b', 'main', '-m', 'one'])).id;
  url = (await serve(R, ['--token-file', tokenFile])).url;
});
afterAll(async () => {
  await stopServers();
  cleanupTemp();
});

describe('remote add --token-file', () => {
  it('an unreadable token file adds nothing (15); --token-file on a folder remote is refused (2)', async () => {
    const r = await A.runAsync(['remote', 'add', 'origin', url, '--token-file', '/nonexistent/token']);
    expect(r.code, describeRun(r)).toBe(15);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_INPUT_NOT_FOUND']);
    const f = await A.runAsync(['remote', 'add', 'origin', R.dir, '--token-file', tokenFile]);
    expect(f.code, describeRun(f)).toBe(2);
    expect(await A.jsonAsync(['remote', 'list'])).toEqual([]);
  });

  it('saves the token with mode 0600; a push without CKVC_TOKEN uses it; remove drops it', async () => {
    const add = await A.jsonAsync(['remote', 'add', 'origin', url, '--token-file', tokenFile]);
    expect(add).toMatchObject({ name: 'origin', url, tokenSaved: true });
    const saved = path.join(A.store, 'remote-tokens.json');
    expect(fs.statSync(saved).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(saved, 'utf8'))).toEqual({ origin: { token: TOKEN } });
    const p = await A.jsonAsync(['push', 'origin', 'main'], { env: { CKVC_TOKEN: undefined } });
    expect(p.refs).toEqual([expect.objectContaining({ name: 'refs/heads/main', new: id })]);
    // The environment comes before the saved token.
    const wrong = await A.runAsync(['push', 'origin', 'main'], { env: { CKVC_TOKEN: 'not-it' } });
    expect(wrong.code, describeRun(wrong)).toBe(21);
    expect(errorCodes(wrong.stderr)).toEqual(['CKVC_UNAUTHORIZED']);
    await A.jsonAsync(['remote', 'remove', 'origin']);
    expect(JSON.parse(fs.readFileSync(saved, 'utf8'))).toEqual({});
  });

  it('a remote named __proto__ is refused (its token used to be dropped without a word); constructor is a name', async () => {
    const r = await A.runAsync(['remote', 'add', '__proto__', url, '--token-file', tokenFile]);
    expect(r.code, describeRun(r)).toBe(15);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_REF_NAME']);
    expect(await A.jsonAsync(['remote', 'list'])).toEqual([]);
    await A.jsonAsync(['remote', 'add', 'constructor', url, '--token-file', tokenFile]);
    const saved = path.join(A.store, 'remote-tokens.json');
    expect(JSON.parse(fs.readFileSync(saved, 'utf8'))).toEqual({ constructor: { token: TOKEN } });
    const p = await A.jsonAsync(['push', 'constructor', 'main'], { env: { CKVC_TOKEN: undefined } });
    expect(p.refs).toEqual([expect.objectContaining({ name: 'refs/heads/main' })]);
    await A.jsonAsync(['remote', 'remove', 'constructor']);
  });
});

describe('branch -r / -a', () => {
  it('list remote-tracking branches as REMOTE/BRANCH, and after the local ones as remotes/REMOTE/BRANCH', async () => {
    const C = newStore('ckvc-rc-c-');
    await C.jsonAsync(['remote', 'add', 'up', A.dir]);
    await C.jsonAsync(['fetch', 'up']);
    await C.jsonAsync(['branch', 'mine', 'up/main']);
    const names = async (flags: string[]) => {
      const tips = await C.jsonAsync<{ name: string; commit: string }[]>(['branch', ...flags]);
      return tips.map((t) => `${t.name}@${t.commit}`);
    };
    expect(await names([])).toEqual([`mine@${id}`]);
    expect(await names(['-r'])).toEqual([`up/main@${id}`]);
    expect(await names(['-a'])).toEqual([`mine@${id}`, `remotes/up/main@${id}`]);
    const text = await C.runAsync(['branch', '-a']);
    expect(text.stdout).toMatch(/remotes\/up\/main {2}[0-9a-f]{12}/);
    const bad = await C.runAsync(['branch', '-r', 'x']);
    expect(bad.code, describeRun(bad)).toBe(2);
  });
});

describe('tags between stores (first-time-user findings)', () => {
  it('a refused tag push advises a new tag name, not a branch; REMOTE/TAG points at the tag fetched under its own name', async () => {
    const P = newStore('ckvc-rc-tag-');
    const dir = tempDir('ckvc-rc-tag-data-');
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.alloc(2048, 1));
    const one = (await P.jsonAsync<{ id: string }>(['commit', dir, '-m', 'one'])).id;
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.alloc(2048, 2));
    const two = (await P.jsonAsync<{ id: string }>(['commit', dir, '-m', 'two'])).id;
    await P.jsonAsync(['remote', 'add', 'origin', url]);
    await P.jsonAsync(['tag', 'rc-v1', one]);
    await P.jsonAsync(['push', 'origin', 'rc-v1'], { env: { CKVC_TOKEN: TOKEN } });
    await P.jsonAsync(['tag', '-d', 'rc-v1']);
    await P.jsonAsync(['tag', 'rc-v1', two]);
    const r = await P.runAsync(['push', 'origin', 'rc-v1'], { env: { CKVC_TOKEN: TOKEN } });
    expect(r.code, describeRun(r)).toBe(13);
    expect(r.stderr).toContain('a tag names one commit for good');
    expect(r.stderr).not.toContain('another branch name');

    const C = newStore('ckvc-rc-tag-c-');
    await C.jsonAsync(['remote', 'add', 'origin', url]);
    await C.jsonAsync(['fetch', 'origin']);
    const l = await C.runAsync(['log', 'origin/rc-v1']);
    expect(l.code, describeRun(l)).toBe(14);
    expect(l.stderr).toContain("tags fetched from a remote keep their own names: 'rc-v1'");
  });
});

describe('best -b REMOTE/BRANCH', () => {
  it('ranks the commits of a remote-tracking branch (made on BRANCH at the remote), as best -b BRANCH does there', async () => {
    const P = newStore('ckvc-rc-best-');
    const dir = tempDir('ckvc-rc-best-data-');
    const ids: string[] = [];
    for (const [i, acc] of [0.5, 0.9, 0.7].entries()) {
      fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.alloc(1024, i));
      const c = await P.jsonAsync<{ id: string }>([
        'commit',
        dir,
        '-m',
        `s${i}`,
        '-b',
        'run1',
        '--metric',
        `acc=${acc}`,
      ]);
      ids.push(c.id);
    }
    const C = newStore('ckvc-rc-best-c-');
    await C.jsonAsync(['remote', 'add', 'hub', P.dir]);
    await C.jsonAsync(['fetch', 'hub']);
    const there = await P.jsonAsync<{ id: string; candidates: number }>(['best', '--metric', 'acc', '-b', 'run1']);
    const here = await C.jsonAsync<{ id: string; candidates: number }>(['best', '--metric', 'acc', '-b', 'hub/run1']);
    expect([here.id, here.candidates]).toEqual([ids[1], 3]);
    expect(here.id).toBe(there.id);
    const none = await C.runAsync(['best', '--metric', 'acc', '-b', 'hub/nope']);
    expect(none.code, describeRun(none)).toBe(14);
  });
});

describe('fetch --prune', () => {
  it('drops remote-tracking branches the remote no longer has (only with --prune); their reflogs keep the commits', async () => {
    const P = newStore('ckvc-rc-prune-');
    const dir = tempDir('ckvc-rc-prune-data-');
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.alloc(1024, 1));
    await P.jsonAsync(['commit', dir, '-m', 'main', '-b', 'main']);
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.alloc(1024, 2));
    const side = (await P.jsonAsync<{ id: string }>(['commit', dir, '-m', 'side', '-b', 'side'])).id;
    const C = newStore('ckvc-rc-prune-c-');
    await C.jsonAsync(['remote', 'add', 'hub', P.dir]);
    await C.jsonAsync(['fetch', 'hub']);
    await P.jsonAsync(['branch', '-d', 'side']);
    const plain = await C.jsonAsync<{ pruned?: unknown }>(['fetch', 'hub']);
    expect(plain.pruned).toBeUndefined();
    expect(C.ref('refs/remotes/hub/side')).toBe(side);
    const pruned = await C.jsonAsync<{ pruned: { name: string; old: string }[] }>(['fetch', 'hub', '--prune']);
    expect(pruned.pruned).toEqual([{ name: 'refs/remotes/hub/side', old: side }]);
    expect(C.ref('refs/remotes/hub/side')).toBeUndefined();
    expect(C.ref('refs/remotes/hub/main')).toBeDefined();
    await C.jsonAsync(['gc', '--grace', '0']);
    const out = tempDir('ckvc-rc-prune-out-');
    const co = await C.runAsync(['checkout', side, '--to', out]);
    expect(co.code, describeRun(co)).toBe(0);
    expect(fs.readFileSync(path.join(out, 'w.bin'))).toEqual(Buffer.alloc(1024, 2));
  });
});

describe('a serve URL with a path after the port', () => {
  it('is the remote answering outside the protocol (22, with how to correct the URL), not a usage error (2)', async () => {
    const C = newStore('ckvc-rc-path-');
    await C.jsonAsync(['remote', 'add', 'hub', `${url}wrong/`]);
    const r = await C.runAsync(['fetch', 'hub']);
    expect(r.code, describeRun(r)).toBe(22);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_REMOTE']);
    expect(r.stderr).toContain('has no ckvc endpoint there');
    expect(r.stderr).toContain("'ckvc remote set NAME URL'");
  });
});
