// Bad input is refused with one stderr line naming the code, the documented exit code, and a store that is
// byte-for-byte what it was (every file under .ckvc except the index cache).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ckvc, describeRun, errorCodes, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, readRef, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, snapshotStore } from '../helpers/snapshots.js';
import { randomBytes, safetensorsBytes, safetensorsFromHeader } from '../helpers/data.js';

afterAll(cleanupTemp);

let s: TestStore;
let data: string;

beforeAll(() => {
  s = newStore();
  data = tempDir('ckvc-bad-');
  fs.writeFileSync(path.join(data, 'good.bin'), randomBytes(1, 300_000));
  fs.writeFileSync(
    path.join(data, 'good.safetensors'),
    safetensorsBytes({ w: { dtype: 'F32', shape: [64, 64] }, b: { dtype: 'F16', shape: [64] } }),
  );
  commitId(s, [path.join(data, 'good.bin'), path.join(data, 'good.safetensors'), '-m', 'base', '--metric', 'loss=1']);
});

/** Runs `args` against the store and checks: exit code, exactly one stderr line ending in [CODE], store unchanged. */
function refused(args: string[], exit: number, code: string, opts: { cwd?: string } = {}): RunResult {
  const before = snapshotStore(s.store);
  const tipBefore = readRef(s.store, 'refs/heads/main');
  const r = s.run(args, opts);
  expect(r.code, describeRun(r)).toBe(exit);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, describeRun(r)).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^ckvc: .+ \\[${code}\\]$`));
  expect(r.stdout, 'nothing on stdout').toBe('');
  expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
  expect(readRef(s.store, 'refs/heads/main'), 'main must not move').toBe(tipBefore);
  return r;
}

function badFile(name: string, bytes: Buffer): string {
  const p = path.join(data, name);
  fs.writeFileSync(p, bytes);
  return p;
}

describe('malformed safetensors: exit 15 CKVC_BAD_SAFETENSORS, store unchanged', () => {
  const valid = () => safetensorsBytes({ a: { dtype: 'F32', shape: [128, 16] }, b: { dtype: 'F32', shape: [16] } });
  const a = { dtype: 'F32', shape: [4], data_offsets: [0, 16] };
  const cases: [string, () => Buffer][] = [
    ['truncated in the data', () => valid().subarray(0, valid().length - 100)],
    ['truncated in the header', () => valid().subarray(0, 20)],
    // A file too short to hold the 8-byte length is malformed, not "changed while being read".
    ['shorter than the length prefix', () => Buffer.from([1, 2, 3])],
    ['empty file', () => Buffer.alloc(0)],
    [
      'header length larger than the file',
      () => {
        const b = Buffer.from(valid());
        b.writeBigUInt64LE(BigInt(b.length + 10), 0);
        return b;
      },
    ],
    [
      'header length over 100 MB',
      () => {
        const b = Buffer.from(valid());
        b.writeBigUInt64LE(200_000_000n, 0);
        return b;
      },
    ],
    [
      'header length 2^64-1',
      () => {
        const b = Buffer.from(valid());
        b.writeBigUInt64LE(0xffffffffffffffffn, 0);
        return b;
      },
    ],
    [
      'header that is not JSON',
      () => safetensorsFromHeader('{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]', Buffer.alloc(16)),
    ],
    [
      'header that is not UTF-8',
      () => safetensorsFromHeader(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('latin1'), Buffer.alloc(0)),
    ],
    ['header that is a JSON array', () => safetensorsFromHeader('[1,2,3]', Buffer.alloc(0))],
    [
      'overlapping offsets',
      () => safetensorsFromHeader({ a, b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, Buffer.alloc(24)),
    ],
    [
      'a hole between tensors',
      () => safetensorsFromHeader({ a, b: { dtype: 'F32', shape: [4], data_offsets: [20, 36] } }, Buffer.alloc(36)),
    ],
    ['trailing bytes after the data', () => safetensorsFromHeader({ a }, Buffer.alloc(20))],
    ['data shorter than the offsets', () => safetensorsFromHeader({ a }, Buffer.alloc(12))],
    [
      'byte size not numel x width',
      () => safetensorsFromHeader({ a: { dtype: 'F32', shape: [5], data_offsets: [0, 16] } }, Buffer.alloc(16)),
    ],
    [
      'unknown dtype',
      () => safetensorsFromHeader({ a: { dtype: 'F31', shape: [4], data_offsets: [0, 16] } }, Buffer.alloc(16)),
    ],
    [
      'negative shape',
      () => safetensorsFromHeader({ a: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, Buffer.alloc(16)),
    ],
    ['missing data_offsets', () => safetensorsFromHeader({ a: { dtype: 'F32', shape: [4] } }, Buffer.alloc(16))],
    [
      'duplicate tensor names',
      () =>
        safetensorsFromHeader(
          '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"a":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}}',
          Buffer.alloc(32),
        ),
    ],
    [
      'end offset before begin',
      () => safetensorsFromHeader({ a: { dtype: 'F32', shape: [0], data_offsets: [16, 0] } }, Buffer.alloc(16)),
    ],
  ];
  for (const [what, make] of cases) {
    it(what, () => {
      const f = badFile(`bad-${what.replace(/\W+/g, '_')}.safetensors`, make());
      refused(['commit', f, '-m', 'bad'], 15, 'CKVC_BAD_SAFETENSORS');
    });
  }

  it('with --json: one JSON error object on stderr', () => {
    const f = badFile(
      'bad-json.safetensors',
      safetensorsFromHeader({ a, b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, Buffer.alloc(24)),
    );
    const before = snapshotStore(s.store);
    const r = s.run(['commit', f, '-m', 'bad', '--json']);
    expect(r.code, describeRun(r)).toBe(15);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    const err = JSON.parse(lines[0]!).error;
    expect(err).toMatchObject({ code: 'CKVC_BAD_SAFETENSORS', exit: 15 });
    expect(typeof err.message).toBe('string');
    expect(typeof err.data).toBe('object');
    expect(r.stdout).toBe('');
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
  });

  it('a bad file after 40 MiB of good data in the same commit: nothing of it is kept', () => {
    const dir = path.join(data, 'mixed');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a_big.bin'), randomBytes(77, 40 * 1024 * 1024));
    fs.writeFileSync(path.join(dir, 'z_bad.safetensors'), valid().subarray(0, 1000));
    refused(['commit', dir, '-m', 'mixed'], 15, 'CKVC_BAD_SAFETENSORS');
    fs.rmSync(dir, { recursive: true });
  });
});

describe('other bad input', () => {
  it('checkout --to a file, or into a folder under a file: exit 15 CKVC_BAD_ARGUMENT naming the file', () => {
    const file = path.join(data, 'good.bin');
    const before = fs.readFileSync(file);
    for (const to of [file, path.join(file, 'sub')]) {
      const r = refused(['checkout', 'main', '--to', to], 15, 'CKVC_BAD_ARGUMENT');
      expect(r.stderr).toContain(`${file} is a file, not a folder`);
      const t = refused(['checkout', 'main', '--to', to, '--tensor', '*'], 15, 'CKVC_BAD_ARGUMENT');
      expect(t.stderr).toContain(`${file} is a file, not a folder`);
    }
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  it('missing input path: exit 15 CKVC_INPUT_NOT_FOUND', () => {
    refused(['commit', path.join(data, 'nope.bin'), '-m', 'x'], 15, 'CKVC_INPUT_NOT_FOUND');
  });

  it('one missing path among good ones: exit 15, nothing stored', () => {
    refused(
      ['commit', path.join(data, 'good.bin'), path.join(data, 'nope.bin'), '-m', 'x'],
      15,
      'CKVC_INPUT_NOT_FOUND',
    );
  });

  it('a folder holding no file (a save that failed): exit 15 CKVC_INPUT_NOT_FOUND, also with --dry-run', () => {
    const empty = path.join(data, 'empty-save');
    fs.mkdirSync(path.join(empty, 'sub'), { recursive: true });
    const r = refused(['commit', empty, '-m', 'x', '--metric', 'loss=0.1'], 15, 'CKVC_INPUT_NOT_FOUND');
    expect(r.stderr).toContain('holds no file to commit: did the save fail');
    expect(r.stderr).toContain('--allow-empty');
    refused(['commit', empty, '-m', 'x', '--dry-run'], 15, 'CKVC_INPUT_NOT_FOUND');
    // A folder of links only: the refusal says they were skipped, or the user could not tell why it is empty.
    const links = path.join(data, 'links-only');
    fs.mkdirSync(links);
    fs.symlinkSync(path.join(data, 'good.bin'), path.join(links, 'good.bin'));
    const l = refused(['commit', links, '-m', 'x'], 15, 'CKVC_INPUT_NOT_FOUND');
    expect(l.stderr).toContain('skipped symlink');
    const other = newStore('ckvc-empty-commit-');
    const made = other.json(['commit', empty, '-m', 'empty on purpose', '--allow-empty']);
    expect(made.files).toBe(0);
    expect(other.json(['ls', made.id]).files).toEqual([]);
  });

  // Inside a committed folder a symlink is skipped with a warning (checkout-safety.test.ts); named, it is followed.
  it('a broken symlink named as an input: exit 15', () => {
    const dir = path.join(data, 'withlink');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a.bin'), 'x');
    fs.symlinkSync(path.join(data, 'does-not-exist'), path.join(dir, 'b.bin'));
    refused(['commit', path.join(dir, 'a.bin'), path.join(dir, 'b.bin'), '-m', 'x'], 15, 'CKVC_INPUT_NOT_FOUND');
    fs.rmSync(dir, { recursive: true });
  });

  it('metric that is not a number: exit 15 CKVC_BAD_METRIC', () => {
    // NaN and ±Infinity are recorded as such (FORMAT.md §5.5; tests/integration/metrics-input.test.ts).
    for (const m of ['loss=abc', 'loss', 'loss=', '=1', 'loss=0x', 'bad name=1']) {
      refused(
        ['commit', path.join(data, 'good.bin'), '-m', 'x', '--metric', 'ok=1', '--metric', m],
        15,
        'CKVC_BAD_METRIC',
      );
    }
    const huge = refused(
      ['commit', path.join(data, 'good.bin'), '-m', 'x', '--metric', 'loss=1e999'],
      15,
      'CKVC_BAD_METRIC',
    );
    expect(huge.stderr).toContain('beyond the range of a 64-bit float');
  });

  it('config that does not parse: exit 15 CKVC_BAD_CONFIG', () => {
    const yaml = path.join(data, 'cfg.yaml');
    fs.writeFileSync(yaml, 'model:\n  layers: [1, 2\n  lr: 0.1\n');
    refused(['commit', path.join(data, 'good.bin'), '-m', 'x', '--config', yaml], 15, 'CKVC_BAD_CONFIG');
    const dupKeys = path.join(data, 'dup.yaml');
    fs.writeFileSync(dupKeys, 'lr: 0.1\nlr: 0.2\n');
    refused(['commit', path.join(data, 'good.bin'), '-m', 'x', '--config', dupKeys], 15, 'CKVC_BAD_CONFIG');
    const json = path.join(data, 'cfg.json');
    fs.writeFileSync(json, '{"lr": 0.1,}');
    refused(['commit', path.join(data, 'good.bin'), '-m', 'x', '--config', json], 15, 'CKVC_BAD_CONFIG');
    const binary = path.join(data, 'cfg.yml');
    fs.writeFileSync(binary, Buffer.from([0xff, 0xfe, 0x00, 0x41]));
    refused(['commit', path.join(data, 'good.bin'), '-m', 'x', '--config', binary], 15, 'CKVC_BAD_CONFIG');
  });

  it('config file that does not exist: exit 15 CKVC_INPUT_NOT_FOUND', () => {
    refused(
      ['commit', path.join(data, 'good.bin'), '-m', 'x', '--config', path.join(data, 'nope.yaml')],
      15,
      'CKVC_INPUT_NOT_FOUND',
    );
  });

  it('step that is not a whole number: exit 15 CKVC_BAD_ARGUMENT', () => {
    for (const step of ['abc', '-1', '1.5']) {
      refused(['commit', path.join(data, 'good.bin'), '-m', 'x', `--step=${step}`], 15, 'CKVC_BAD_ARGUMENT');
    }
  });

  it('empty message: exit 15 CKVC_BAD_ARGUMENT', () => {
    refused(['commit', path.join(data, 'good.bin'), '-m', '  '], 15, 'CKVC_BAD_ARGUMENT');
  });

  it('two inputs with the same base name: exit 15', () => {
    const other = path.join(data, 'other');
    fs.mkdirSync(other, { recursive: true });
    fs.writeFileSync(path.join(other, 'good.bin'), 'different');
    refused(['commit', path.join(data, 'good.bin'), path.join(other, 'good.bin'), '-m', 'x'], 15, 'CKVC_BAD_ARGUMENT');
  });

  it('unknown --parent revision: exit 14, nothing stored', () => {
    refused(['commit', path.join(data, 'good.bin'), '-m', 'x', '--parent', 'nosuch'], 14, 'CKVC_UNKNOWN_REVISION');
  });

  it('a tag that exists: exit 13, named by the commit it tags, and no annotated tag object written', () => {
    const t = newStore('ckvc-tag-exists-');
    const tip = commitId(t, [path.join(data, 'good.bin'), '-m', 'base']);
    t.ok(['tag', 'annotated-once', '-m', 'first words']);
    expect(t.ok(['tag']).stdout).toContain(tip.slice(0, 12));
    for (const args of [
      ['tag', 'annotated-once', '-m', 'second words'],
      ['tag', 'annotated-once'],
    ]) {
      const before = snapshotStore(t.store);
      const r = t.run(args);
      expect(r.code, describeRun(r)).toBe(13);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_REF_CONFLICT']);
      expect(r.stderr).toContain(`tag 'annotated-once' already exists (at ${tip.slice(0, 12)})`);
      expect(diffSnapshots(before, snapshotStore(t.store))).toEqual([]);
    }
  });
});

describe('command-line usage errors: exit 2 CKVC_USAGE, and the command does not run', () => {
  it('unknown option on commit: exit 2 and no commit is made', () => {
    fs.writeFileSync(path.join(data, 'new.bin'), randomBytes(5, 10_000));
    refused(['commit', path.join(data, 'new.bin'), '-m', 'x', '--bogus'], 2, 'CKVC_USAGE');
  });

  it('unknown option on log: exit 2, nothing printed on stdout', () => {
    refused(['log', '--bogus'], 2, 'CKVC_USAGE');
  });

  it('an unknown option is named as typed, with the option a typo meant and the command whose help lists them', () => {
    const typo = refused(['commit', path.join(data, 'good.bin'), '-m', 'x', '--metrc', 'loss=1'], 2, 'CKVC_USAGE');
    expect(typo.stderr).toContain("unknown option --metrc (did you mean '--metric'?); 'ckvc commit --help' lists");
    // yargs lists every spelling of an option it does not know (dry-run, dryRun): one, as typed.
    const twice = refused(['checkout', 'HEAD', '--to', path.join(data, 'co'), '--dry-run'], 2, 'CKVC_USAGE');
    expect(twice.stderr).toContain("unknown option --dry-run; 'ckvc checkout --help' lists");
    expect(twice.stderr).not.toContain('dryRun');
    const extra = refused(['log', 'main', 'extra'], 2, 'CKVC_USAGE');
    expect(extra.stderr).toContain("unknown argument 'extra'; 'ckvc log --help' lists");
    const spellings: [string[], string][] = [
      [['log', '-x'], 'unknown option -x;'],
      [['log', '-xz'], 'unknown options -x, -z;'],
      [['log', '--no-bogus'], 'unknown option --no-bogus;'],
      [['log', '--foo.bar'], 'unknown option --foo.bar;'],
      [['nosuchcmd'], "unknown command 'nosuchcmd'; 'ckvc --help' lists the commands"],
    ];
    for (const [args, said] of spellings) expect(refused(args, 2, 'CKVC_USAGE').stderr).toContain(said);
    // Words after '--' were set aside by yargs and read by no command: `branch -d -- old` listed branches.
    const dash = refused(['branch', '-d', '--', 'main'], 2, 'CKVC_USAGE');
    expect(dash.stderr).toContain("ckvc takes no '--': 'main'");
    expect(readRef(s.store, 'refs/heads/main')).toBeDefined();
    // An option's value may be '--' (a script's -m "$msg"): that is not the separator.
    const dry = s.run(['commit', path.join(data, 'good.bin'), '-m', '--', '--dry-run']);
    expect(dry.code, describeRun(dry)).toBe(0);
    for (const kind of ['branch', 'tag'])
      expect(refused([kind, '-d'], 2, 'CKVC_USAGE').stderr).toContain(`${kind} -d needs the ${kind} to delete`);
    // A global option's value is not the command: `--store tag log` runs log.
    const r = ckvc(['--store', s.store, 'log', '--bogus']);
    expect(r.stderr).toContain("unknown option --bogus; 'ckvc log --help' lists");
  });

  it('unknown option on branch NAME: exit 2 and no branch is created', () => {
    refused(['branch', 'newbranch', '--frobnicate'], 2, 'CKVC_USAGE');
    expect(readRef(s.store, 'refs/heads/newbranch')).toBeUndefined();
  });

  it('unknown option on tag NAME: exit 2 and no tag is created', () => {
    refused(['tag', 'newtag', '--frobnicate'], 2, 'CKVC_USAGE');
    expect(readRef(s.store, 'refs/tags/newtag')).toBeUndefined();
  });

  it('unknown command: exit 2', () => {
    refused(['frobnicate'], 2, 'CKVC_USAGE');
  });

  it('missing required option --to on checkout: exit 2 (not an internal error)', () => {
    refused(['checkout', 'HEAD'], 2, 'CKVC_USAGE');
  });

  it('missing required -m on commit: exit 2', () => {
    refused(['commit', path.join(data, 'good.bin')], 2, 'CKVC_USAGE');
  });

  it('a single-valued option given twice, on any command: exit 2 naming the option, and nothing runs', () => {
    fs.writeFileSync(path.join(data, 'twice.bin'), randomBytes(6, 10_000));
    const twice = path.join(data, 'twice.bin');
    const cases: [string[], string][] = [
      [['commit', twice, '-m', 'x', '-b', 'one', '-b', 'two'], '--branch (-b) given twice ("one", "two")'],
      [['commit', twice, '-m', 'x', '--epoch', '1', '--epoch', '2'], '--epoch given twice ("1", "2")'],
      [['commit', twice, '-m', 'a', '--message', 'b', '-m', 'c'], '--message (-m) given 3 times ("a", "b", "c")'],
      [['tag', 'twice', '-m', 'a', '-m', 'b'], '--message (-m) given twice'],
      [['log', '-n', '1', '--max-count', '2'], '-n (--max-count) given twice'],
      [['checkout', 'HEAD', '--to', path.join(data, 'out1'), '--to', path.join(data, 'out2')], '--to given twice'],
      [['prune', '--keep-last', '1', '--keep-last', '2'], '--keep-last given twice'],
      [['config', 'show', '--rev', 'HEAD', '--rev', 'main'], '--rev given twice'],
      [['watch', path.join(data, 'w'), '-b', 'x', '-b', 'y', '--once'], '--branch (-b) given twice'],
      // The global option: s.run adds --store once more.
      [['status', '--store', s.store], '--store given twice'],
    ];
    for (const [args, message] of cases) {
      const r = refused(args, 2, 'CKVC_USAGE');
      expect(r.stderr, args.join(' ')).toContain(message);
    }
    expect(fs.existsSync(path.join(data, 'out1')) || fs.existsSync(path.join(data, 'w'))).toBe(false);
  });

  it('given twice with --json: the error names the option and its values; repeatable options still repeat', () => {
    const r = s.run(['best', '--metric', 'loss', '--metric', 'acc', '--json']);
    expect(r.code, describeRun(r)).toBe(2);
    expect(JSON.parse(r.stderr).error).toMatchObject({
      code: 'CKVC_USAGE',
      data: { option: 'metric', values: ['loss', 'acc'] },
    });
    const ok = s.run([
      'commit',
      path.join(data, 'good.bin'),
      '-m',
      'x',
      '--label',
      'a=1',
      '--label',
      'b=2',
      '--metric',
      'm=1',
      '--metric',
      'n=2',
      '--dry-run',
      '--json',
      '--json',
    ]);
    expect(ok.code, describeRun(ok)).toBe(0);
  });

  it('a positional argument also given as its option is refused, naming both values; one spelling alone runs', () => {
    const good = path.join(data, 'good.bin');
    const cases: [string[], string][] = [
      [['show', 'HEAD', '--rev', 'main~1'], '<rev> given both as an argument ("HEAD") and as --rev ("main~1")'],
      [['log', '--rev', 'nope', 'HEAD'], '<rev> given both as an argument ("HEAD") and as --rev ("nope")'],
      [['ls', 'HEAD', '--path=x', 'good.bin'], '<path> given both as an argument ("good.bin") and as --path ("x")'],
      [['diff', 'HEAD', 'HEAD', '-b', 'main'], '<b> given both as an argument ("HEAD") and as -b ("main")'],
      [['commit', good, '--paths', data, '-m', 'x'], `<paths> given both as an argument (${JSON.stringify(good)})`],
      [['push', 'origin', '--refs', 'main', 'v1'], '--refs ("main", "v1") would be dropped'],
    ];
    for (const [args, message] of cases) {
      const r = refused(args, 2, 'CKVC_USAGE');
      expect(r.stderr, args.join(' ')).toContain(message);
    }
    const r = s.run(['show', 'HEAD', '--rev', 'main', '--json']);
    expect(JSON.parse(r.stderr).error).toMatchObject({
      code: 'CKVC_USAGE',
      data: { option: 'rev', values: ['HEAD', 'main'] },
    });
    for (const args of [
      ['show', '--rev', 'HEAD'],
      ['show', 'HEAD', '--rev', 'HEAD'],
      ['show', 'HEAD'],
    ])
      expect(s.run(args).stdout, args.join(' ')).toMatch(/^commit [0-9a-f]{64} \(main\)/);
  });

  it('log -n with a value that is not a number is refused (exit 2 or 15), not an empty success', () => {
    const r = s.run(['log', '-n', 'abc']);
    expect([2, 15], describeRun(r)).toContain(r.code);
    expect(errorCodes(r.stderr)).toHaveLength(1);
  });
});

describe('no store', () => {
  it('--store pointing at a folder that is not a store: exit 10 CKVC_NO_STORE', () => {
    const empty = tempDir('ckvc-empty-');
    for (const args of [
      ['log'],
      ['status'],
      ['commit', path.join(data, 'good.bin'), '-m', 'x'],
      ['verify'],
      ['branch'],
    ]) {
      const r = ckvc([...args, '--store', empty]);
      expect(r.code, describeRun(r)).toBe(10);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_NO_STORE']);
    }
    expect(fs.readdirSync(empty)).toEqual([]); // nothing created there
    const missing = ckvc(['log', '--store', path.join(empty, 'missing')]);
    expect(missing.code).toBe(10);
  });

  it('CKVC_DIR pointing at a non-store: exit 10', () => {
    const empty = tempDir('ckvc-empty-');
    const r = ckvc(['status'], { env: { CKVC_DIR: empty } });
    expect(r.code, describeRun(r)).toBe(10);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_NO_STORE']);
  });

  it('no --store, no CKVC_DIR and no .ckvc upward from cwd: exit 10', () => {
    // Only meaningful when nothing above the temp dir is a store.
    let hasStoreAbove = false;
    for (let d = os.tmpdir(); ; d = path.dirname(d)) {
      if (fs.existsSync(path.join(d, '.ckvc'))) hasStoreAbove = true;
      if (path.dirname(d) === d) break;
    }
    if (hasStoreAbove) return;
    const cwd = tempDir('ckvc-nostore-');
    const r = ckvc(['log'], { cwd });
    expect(r.code, describeRun(r)).toBe(10);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_NO_STORE']);
  });

  it('the store is found from cwd, from a subfolder, and via CKVC_DIR', () => {
    const sub = path.join(s.dir, 'deep', 'er');
    fs.mkdirSync(sub, { recursive: true });
    const fromCwd = ckvc(['show', '--json'], { cwd: sub });
    expect(fromCwd.code, describeRun(fromCwd)).toBe(0);
    const current = readRef(s.store, 'refs/heads/main');
    expect(current).toBeDefined();
    expect(JSON.parse(fromCwd.stdout).id).toBe(current);
    const fromEnv = ckvc(['show', '--json'], { env: { CKVC_DIR: s.dir } });
    expect(fromEnv.code, describeRun(fromEnv)).toBe(0);
    expect(JSON.parse(fromEnv.stdout).id).toBe(current);
    fs.rmSync(path.join(s.dir, 'deep'), { recursive: true });
  });
});

describe('servers: a port they cannot use is refused in one line, saying what to do', () => {
  for (const cmd of ['serve', 'ui']) {
    it(`${cmd} --port out of range or not a number: exit 15 CKVC_BAD_ARGUMENT quoting it`, () => {
      for (const port of ['99999', 'abc', '-1', '1.5']) {
        const r = refused([cmd, '--port', port], 15, 'CKVC_BAD_ARGUMENT');
        expect(r.stderr).toContain(`got "${port}"`);
      }
    });
  }
  it('a port already in use: exit 1 CKVC_IO, naming another --port', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = String((blocker.address() as net.AddressInfo).port);
    try {
      for (const cmd of ['serve', 'ui']) {
        const r = refused([cmd, '--port', port], 1, 'CKVC_IO');
        expect(r.stderr).toContain('EADDRINUSE; another program is listening there; choose another --port');
      }
    } finally {
      blocker.close();
    }
  });
});

describe("init where a file or a broken link holds the store folder's name: exit 15, saying so", () => {
  it('a file and a link to nowhere', () => {
    for (const make of [(p: string) => fs.writeFileSync(p, 'x'), (p: string) => fs.symlinkSync('nowhere', p)]) {
      const dir = tempDir('ckvc-init-clash-');
      make(path.join(dir, '.ckvc'));
      const r = ckvc(['init', dir]);
      expect(r.code, describeRun(r)).toBe(15);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
      expect(r.stderr).toContain('is a file or a broken link, not a folder');
    }
  });
});

describe.skipIf(!fs.existsSync('/proc/self'))('a folder the file system will not create', () => {
  // Node's recursive mkdir retries for ever where mkdir fails with ENOENT under an existing parent (/proc).
  it('checkout --to under /proc and init there fail at once: exit 1 CKVC_IO', () => {
    refused(['checkout', 'main', '--to', '/proc/ckvc-no-such-folder/out'], 1, 'CKVC_IO');
    const r = ckvc(['init', '/proc/ckvc-no-such-folder'], { timeoutMs: 20_000 });
    expect(r.code, describeRun(r)).toBe(1);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_IO']);
  });
});
