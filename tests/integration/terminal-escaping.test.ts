// Messages, file and tensor names, refs, labels and config keys can come from someone else's bundle; printed raw,
// `\e]0;TITLE\a` would retitle the terminal, a newline in a file name would forge an `ls` line and a bidi override
// would reorder what is shown. Human output escapes them (`\x1b`, `\n`, `\u202e`); --json keeps them exact.
// Every check reads the raw bytes the real CLI wrote.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BytesResult, ckvcBytes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { writeSafetensors } from '../helpers/data.js';

afterAll(cleanupTemp);

const MESSAGE = 'retrain \x1b]0;TITLE\x07 done\nsecond line \u202e reversed';
const TAG_MESSAGE = 'release \x1b[1mbold\x1b[0m\u2028sep';
const FILE_NL = 'a\nb.bin';
const FILE_ESC = 'e\x1b[2Jx.bin';
const FILE_C1 = 'c\u009b31m.bin'; // U+009B is a one-character CSI to some terminals
const TENSOR = 'w\x1b[5m';
// Ref names refuse C0, DEL and spaces (spec/FORMAT.md §6.1) but not C1 or bidi controls.
const BRANCH = 'exp\u202elive';
const TAG = 'v\u009b1';
const CONFIG_KEY = 'lr\u202e\x1b[8m';

// What each character becomes in human output.
const SHOWN = {
  MESSAGE_1: 'retrain \\x1b]0;TITLE\\x07 done',
  MESSAGE_2: 'second line \\u202e reversed',
  TAG_MESSAGE: 'release \\x1b[1mbold\\x1b[0m\\u2028sep',
  FILE_NL: 'a\\nb.bin',
  FILE_ESC: 'e\\x1b[2Jx.bin',
  FILE_C1: 'c\\x9b31m.bin',
  TENSOR: 'w\\x1b[5m',
  BRANCH: 'exp\\u202elive',
  TAG: 'v\\x9b1',
  // A key that is not a plain identifier is shown as a JSON path, which escapes C0 but not the override.
  CONFIG_PATH: '["lr\\u202e\\u001b[8m"]',
} as const;

/** Runs the CLI keeping stdout and stderr as bytes, as an author whose name holds an escape sequence. */
function raw(args: string[], opts: { cwd?: string } = {}): BytesResult {
  return ckvcBytes(args, { cwd: opts.cwd, env: { CKVC_AUTHOR: 'test\x1b[31m' } });
}

const text = (b: Buffer) => b.toString('utf8');
const describeRaw = (args: string[], r: BytesResult) =>
  `ckvc ${JSON.stringify(args)} exit ${r.code}\n--- stdout ---\n${text(r.stdout)}\n--- stderr ---\n${text(r.stderr)}`;

/** Byte offsets of anything a terminal would act on: C0 but the newline, DEL, and (as UTF-8) C1, U+2028/9 and
 * the bidi embeddings, overrides and isolates. */
function terminalControls(b: Buffer): string[] {
  const found: string[] = [];
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if ((c < 0x20 && c !== 0x0a) || c === 0x7f) found.push(`0x${c.toString(16)} at ${i}`);
    else if (c === 0xc2 && b[i + 1]! >= 0x80 && b[i + 1]! <= 0x9f) found.push(`U+00${b[i + 1]!.toString(16)} at ${i}`);
    else if (c === 0xe2 && b[i + 1] === 0x80 && b[i + 2]! >= 0xa8 && b[i + 2]! <= 0xae)
      found.push(`U+20${(b[i + 2]! - 0x80).toString(16)} at ${i}`);
    else if (c === 0xe2 && b[i + 1] === 0x81 && b[i + 2]! >= 0xa6 && b[i + 2]! <= 0xa9)
      found.push(`U+20${(b[i + 2]! - 0x40).toString(16)} at ${i}`);
  }
  return found;
}

/** Runs a human-output command that must succeed and print nothing a terminal would act on; returns stdout. */
function human(args: string[], opts: { code?: number } = {}): string {
  const r = raw(args);
  expect(r.code, describeRaw(args, r)).toBe(opts.code ?? 0);
  expect(terminalControls(r.stdout), describeRaw(args, r)).toEqual([]);
  expect(terminalControls(r.stderr), describeRaw(args, r)).toEqual([]);
  return text(r.stdout) + text(r.stderr);
}

function json<T = any>(args: string[]): T {
  const r = raw([...args, '--json']);
  expect(r.code, describeRaw(args, r)).toBe(0);
  return JSON.parse(text(r.stdout)) as T;
}

let s: TestStore;
let st: (args: string[]) => string[];
let ck: string;
let c1: string;
let c2: string;

beforeAll(() => {
  s = newStore('ckvc-esc-');
  st = (args) => [...args, '--store', s.store];
  ck = tempDir('ckvc-esc-ck-');
  fs.writeFileSync(path.join(ck, FILE_NL), 'first');
  fs.writeFileSync(path.join(ck, FILE_ESC), 'escape');
  fs.writeFileSync(path.join(ck, FILE_C1), 'c1');
  writeSafetensors(path.join(ck, 'model.safetensors'), { [TENSOR]: { dtype: 'F32', shape: [4] } });
  const cfg = path.join(tempDir('ckvc-esc-cfg-'), 'config.json');
  fs.writeFileSync(cfg, JSON.stringify({ [CONFIG_KEY]: 1, name: 'a\u202eb' }));
  c1 = json(
    st([
      'commit',
      ck,
      '-m',
      MESSAGE,
      '-b',
      BRANCH,
      '--config',
      cfg,
      '--label',
      `note=\x1b[7m\u202e`,
      '--run',
      'run\x07',
      '--metric',
      'loss=0.5',
    ]),
  ).id;
  fs.writeFileSync(path.join(ck, FILE_NL), 'second');
  writeSafetensors(path.join(ck, 'model.safetensors'), { [TENSOR]: { dtype: 'F32', shape: [4] } }, undefined, 2);
  fs.writeFileSync(cfg, JSON.stringify({ [CONFIG_KEY]: 2, name: 'a\u202ec' }));
  c2 = json(st(['commit', ck, '-m', 'second \x1b[31mred', '-b', BRANCH, '--config', cfg, '--metric', 'loss=0.4'])).id;
  json(st(['tag', TAG, c1, '-m', TAG_MESSAGE]));
});

describe('human output escapes what came from elsewhere', () => {
  it('log and show: message lines stay lines, each escaped; refs, author, run, labels escaped', () => {
    const log = human(st(['log', BRANCH]));
    expect(log).toContain(`    ${SHOWN.MESSAGE_1}\n    ${SHOWN.MESSAGE_2}\n`);
    expect(log).toContain(`commit ${c2} (${SHOWN.BRANCH})\n`);
    expect(log).toContain(`commit ${c1} (tag: ${SHOWN.TAG})\n`);
    expect(log).toContain('Author:  test\\x1b[31m\n');
    expect(log).toContain('Run:     run\\x07\n');
    expect(log).toContain('Labels:  note=\\x1b[7m\\u202e\n');
    expect(log).toContain('    second \\x1b[31mred\n');

    const oneline = human(st(['log', '--oneline', BRANCH]))
      .split('\n')
      .filter(Boolean);
    expect(oneline).toHaveLength(2); // the message's second line is not a line of the listing
    expect(oneline[1]).toContain(SHOWN.MESSAGE_1);
    expect(oneline[1]).not.toContain('second line');
    expect(human(st(['log', '--graph', '--all']))).toContain(SHOWN.MESSAGE_1);

    const show = human(st(['show', c1]));
    expect(show).toContain(`  ${SHOWN.FILE_NL}  5 B  opaque\n`);
    expect(show).toContain(`  ${SHOWN.FILE_ESC}  6 B  opaque\n`);
    expect(show).toContain(`  ${SHOWN.FILE_C1}  2 B  opaque\n`);
  });

  it('ls lists one line per file and tensor, names escaped', () => {
    const lines = human(st(['ls', BRANCH, '--tensors']))
      .split('\n')
      .filter(Boolean);
    expect(lines.map((l) => l.split('  ')[0])).toEqual([
      SHOWN.FILE_NL,
      SHOWN.FILE_C1,
      SHOWN.FILE_ESC,
      'model.safetensors',
      '',
    ]);
    expect(lines[4]!.startsWith(`  ${SHOWN.TENSOR}  F32  [4]`), lines[4]).toBe(true);
  });

  it('diff and diff --stat: files, tensors and config keys escaped; a newline in a name forges no line', () => {
    const d = human(st(['diff', c1, c2]));
    expect(d).toContain(`  ~ ${SHOWN.FILE_NL}  5 B -> 6 B\n`);
    expect(d).toContain(`  ~ model.safetensors:${SHOWN.TENSOR}  F32 [4]`);
    expect(d).toContain(`  ~ ${SHOWN.CONFIG_PATH}: 1 -> 2\n`);
    expect(d).toContain('  ~ name: "a\\u202eb" -> "a\\u202ec"\n'); // JSON.stringify leaves the override raw
    const stat = human(st(['diff', '--stat', c1, c2]))
      .split('\n')
      .filter(Boolean);
    expect(stat).toHaveLength(3); // two changed files and the summary
    expect(stat[0]).toMatch(/^ a\\nb\.bin +\| changed/);
  });

  it('tag and branch listings, reflog: names and messages escaped', () => {
    const tags = human(st(['tag']));
    expect(tags).toContain(`  ${SHOWN.TAG}  ${c1.slice(0, 12)}`);
    expect(tags).toContain(SHOWN.TAG_MESSAGE); // an annotated tag lists with its own message
    const branches = human(st(['branch']));
    expect(branches.startsWith(`* ${SHOWN.BRANCH}  ${c2.slice(0, 12)}  `), branches).toBe(true); // the first commit took HEAD along
    expect(branches.endsWith('  second \\x1b[31mred\n'), branches).toBe(true);
    expect(human(st(['reflog', BRANCH]))).toContain(`commit: ${SHOWN.MESSAGE_1} ${SHOWN.MESSAGE_2}`);
    expect(human(st(['tag', '-d', TAG]))).toContain(`deleted tag ${SHOWN.TAG} (was `);
    json(st(['tag', TAG, c1, '-m', TAG_MESSAGE]));
  });

  it('switch, status, config label, best, alias: names and labels escaped', () => {
    expect(human(st(['switch', BRANCH]))).toContain(`switched to branch ${SHOWN.BRANCH}`);
    expect(human(st(['status']))).toContain(`branch: ${SHOWN.BRANCH}\n`);
    const hash = json(st(['show', c1])).config.hash as string;
    expect(human(st(['config', 'label', hash, 'label \x1b[2J']))).toContain('"label \\x1b[2J"');
    expect(human(st(['show', c1]))).toMatch(/Config: {2}config\.json [0-9a-f]{12} "label \\x1b\[2J"\n/);
    expect(human(st(['best', '--metric', 'loss', '-b', BRANCH]))).toContain(
      `on ${SHOWN.BRANCH} among 2 commit(s): ${c2.slice(0, 12)} second \\x1b[31mred\n`,
    );
    expect(human(st(['alias', 'top\u2066', '--track', 'loss', '-b', BRANCH]))).toContain(
      `alias top\\u2066 tracks the lowest loss on ${SHOWN.BRANCH}: now ${c2.slice(0, 12)}`,
    );
    expect(human(st(['alias']))).toMatch(
      new RegExp(`^top\\\\u2066  ${c2.slice(0, 12)}  min loss=0\\.4 on exp\\\\u202elive\\n$`),
    );
  }, 120_000);

  it('--json keeps every string exact', () => {
    const log = json(st(['log', BRANCH]));
    expect(log.map((c: any) => c.message)).toEqual(['second \x1b[31mred', MESSAGE]);
    expect(log[1].labels).toEqual({ note: '\x1b[7m\u202e' });
    expect(log[1].run).toBe('run\x07');
    expect(log[0].refs).toEqual([BRANCH, 'alias: top\u2066']);
    expect(log[1].refs).toEqual([`tag: ${TAG}`]);
    expect(
      json(st(['ls', c1, '--tensors']))
        .files.map((f: any) => f.path)
        .sort(),
    ).toEqual([FILE_NL, FILE_C1, FILE_ESC, 'model.safetensors'].sort());
    const tags = json(st(['tag']));
    expect(tags.map((t: any) => [t.name, t.tagMessage])).toEqual([[TAG, TAG_MESSAGE]]);
    const d = json(st(['diff', c1, c2]));
    expect(d.files.changed.map((f: any) => f.path)).toEqual([FILE_NL, 'model.safetensors']);
    expect(d.tensors.changed.map((t: any) => t.name)).toEqual([TENSOR]);
    expect(d.config.changes.map((c: any) => [c.path, c.new]).sort()).toEqual([
      [`[${JSON.stringify(CONFIG_KEY)}]`, 2],
      ['name', 'a\u202ec'],
    ]);
    expect(json(st(['branch'])).map((b: any) => b.name)).toEqual([BRANCH]);
  });

  it('errors that quote a name are one escaped line; with --json the name is exact', () => {
    const name = 'nope\x1b]0;X\x07\u202e';
    const e = raw(st(['show', name]));
    expect(e.code, describeRaw(['show', name], e)).toBe(14);
    expect(terminalControls(e.stderr), describeRaw(['show', name], e)).toEqual([]);
    expect(text(e.stderr)).toContain('\\u202e');

    const missing = `${BRANCH}:no\nsuch\x1b[2J`;
    const m = raw(st(['cat', missing]));
    expect(m.code, describeRaw(['cat', missing], m)).toBe(14);
    expect(terminalControls(m.stderr), describeRaw(['cat', missing], m)).toEqual([]);
    expect(text(m.stderr)).toMatch(
      /^ckvc: no\\nsuch\\x1b\[2J is not a file of exp\\u202elive .*\[CKVC_PATH_NOT_FOUND\]\n$/,
    );

    const j = raw(st(['cat', missing, '--json']));
    expect(JSON.parse(text(j.stderr)).error.data.path).toBe('no\nsuch\x1b[2J');
  });
});

describe('a bundle from elsewhere', () => {
  it('pack, verify, verify --markdown and pull report escaped names; the pulled history logs escaped', () => {
    const bundle = path.join(tempDir('ckvc-esc-bundle-'), 'b.ckvc');
    const packed = human(st(['pack', BRANCH, TAG, '-o', bundle]));
    expect(packed).toContain(`refs/heads/${SHOWN.BRANCH}  ${c2.slice(0, 12)}`);
    expect(packed).toMatch(new RegExp(`refs/tags/\\S+  ${c1.slice(0, 12)}  \\(tag [0-9a-f]{12}: `));
    expect(packed).toContain(`: ${SHOWN.TAG_MESSAGE})\n`);
    expect(human(['verify', bundle])).toContain(`refs/tags/${SHOWN.TAG}  ${c1.slice(0, 12)}`);

    const md = human(['verify', bundle, '--markdown']).split('\n').filter(Boolean);
    expect(md.filter((l) => l.startsWith('|'))).toHaveLength(4); // header, rule, one row per ref: no row broken
    const config = json(st(['show', c1])).config.hash.slice(0, 12);
    const commit = `\`${c1.slice(0, 12)}\``;
    const row = [SHOWN.TAG, commit, '', 'loss=0.5', `\`${config}\``, SHOWN.MESSAGE_1, SHOWN.TAG_MESSAGE];
    expect(md).toContain(`| ${row.join(' | ')} |`);

    const other = newStore('ckvc-esc-recv-');
    const pulled = human(['pull', bundle, '--store', other.store]);
    expect(pulled).toContain(`refs/heads/bundle/${SHOWN.BRANCH}  (new)`);
    const log = human(['log', `bundle/${BRANCH}`, '--store', other.store]);
    expect(log).toContain(`    ${SHOWN.MESSAGE_1}\n    ${SHOWN.MESSAGE_2}\n`);
    expect(log).toContain(`(bundle/${SHOWN.BRANCH})`);
    expect(human(['log', '--oneline', '--all', '--store', other.store])).toContain(`tag: bundle/${SHOWN.TAG}`);
    const exact = json(['log', `bundle/${BRANCH}`, '--store', other.store]);
    expect(exact[1].message).toBe(MESSAGE);
  }, 120_000);
});

describe('watch', () => {
  it('names the checkpoints it finds escaped; --json prints them exact', () => {
    const dir = tempDir('ckvc-esc-watch-');
    const name = 'step_1\x1b[2J.bin';
    fs.writeFileSync(path.join(dir, name), 'weights');
    const w = raw(st(['watch', dir, '-b', 'watched', '--once', '--settle', '0.2', '--pattern', 'step_*']));
    expect(w.code, describeRaw(['watch'], w)).toBe(0);
    expect(terminalControls(w.stdout), describeRaw(['watch'], w)).toEqual([]);
    expect(terminalControls(w.stderr), describeRaw(['watch'], w)).toEqual([]);
    expect(text(w.stdout)).toMatch(/^[0-9a-f]{64} step_1\\x1b\[2J\.bin\n$/);
    expect(json(st(['log', 'watched']))[0].labels['watch.source']).toBe(name);
  });
});
