// `ckvc config show|extract|diff|label`.
import { addCommand, withStore, type CliParser } from '../context.js';
import { dim, info, json, out, short } from '../render.js';
import { escaped } from '../terminal-text.js';

// JSON.stringify escapes C0 but not C1 or bidi overrides, hence the escaping on top.
const fmt = (v: unknown) => escaped(JSON.stringify(v) ?? 'undefined');

export function configCommands(y: CliParser): void {
  y.command('config', 'The config each commit was trained with: show, extract, diff, label', (c) => {
    configSubcommands(c);
    return c.demandCommand(1, "give a config subcommand: show, extract, diff or label; see 'ckvc config --help'");
  });
}

function configSubcommands(c: CliParser): void {
  showCommand(c);
  extractCommand(c);
  diffCommand(c);
  labelCommand(c);
}

function showCommand(c: CliParser): void {
  addCommand(
    c,
    'show [rev]',
    "Print a commit's config snapshot, byte for byte",
    (a) => a.positional('rev', { type: 'string', default: 'HEAD' }),
    async (args) => {
      const r = await withStore(args, (s) => s.configShow(args.rev));
      if (args.json) {
        const { bytes, ...rest } = r;
        return json({ ...rest, text: bytes.toString('utf8') });
      }
      process.stdout.write(r.bytes);
      info(
        dim(
          `${escaped(r.name)}: config hash ${r.hash}${r.label ? ` "${escaped(r.label)}"` : ''} (commit ${short(r.commit!)})`,
        ),
      );
    },
  );
}

function extractCommand(c: CliParser): void {
  addCommand(
    c,
    'extract <rev>',
    "Write a commit's config snapshot to a file, byte for byte",
    (a) =>
      a
        .positional('rev', { type: 'string', demandOption: true })
        .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'file to write' })
        .option('force', { type: 'boolean', describe: 'replace an existing different file' }),
    async (args) => {
      const r = await withStore(args, (s) => s.configExtract(args.rev, args.output, args.force));
      return args.json
        ? json(r)
        : info(`wrote ${escaped(r.file)} (${r.bytes} bytes, config hash ${short(r.hash)}) from ${short(r.commit)}`);
    },
  );
}

function diffCommand(c: CliParser): void {
  addCommand(
    c,
    'diff <a> <b>',
    'Compare two configs key by key; A and B are revisions, config files, or FILE#REV: a commit inside a ' +
      'bundle file (verified, not imported)',
    (a) =>
      a.positional('a', { type: 'string', demandOption: true }).positional('b', { type: 'string', demandOption: true }),
    async (args) => {
      const r = await withStore(args, (s) => s.configDiff(args.a, args.b));
      if (args.json) return json(r);
      const where = (x: typeof r.a) =>
        x.commit ? `${x.bundle ? `${escaped(x.bundle)}#` : ''}${short(x.commit)}` : escaped(x.file ?? '');
      const name = (x: typeof r.a) => `${where(x)} (${short(x.hash)}${x.label ? ` "${escaped(x.label)}"` : ''})`;
      if (r.same) return out(`same config: ${name(r.a)} = ${name(r.b)}`);
      out(`${name(r.a)} -> ${name(r.b)}: ${r.changes.length} key(s) differ`);
      for (const ch of r.changes) {
        if (ch.kind === 'added') out(`+ ${escaped(ch.path)}: ${fmt(ch.new)}`);
        else if (ch.kind === 'removed') out(`- ${escaped(ch.path)}: ${fmt(ch.old)}`);
        else out(`~ ${ch.path ? escaped(ch.path) : '(whole config)'}: ${fmt(ch.old)} -> ${fmt(ch.new)}`);
      }
    },
  );
}

function labelCommand(c: CliParser): void {
  addCommand(
    c,
    'label <hash> <text>',
    'Name a config hash; the label shows in log, show and diff wherever the hash appears ("" removes it)',
    (a) =>
      a
        .positional('hash', { type: 'string', demandOption: true })
        .positional('text', { type: 'string', demandOption: true }),
    async (args) => {
      const r = await withStore(args, (s) => s.configLabel(args.hash, args.text));
      return args.json
        ? json(r)
        : info(
            r.label
              ? `labelled config ${short(r.hash)} "${escaped(r.label)}"`
              : `removed the label of config ${short(r.hash)}`,
          );
    },
  );
}
