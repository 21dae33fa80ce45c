import { writtenBefore } from '../../api/checkout-partial.js';
import { CkvcError } from '../../core/errors.js';
import { addCommand, withStore, type CliParser } from '../context.js';
import { bytes, info, json, out, short } from '../render.js';
import { setInterruptNote } from '../interruption.js';
import { escaped } from '../terminal-text.js';

export function checkoutCommand(y: CliParser): void {
  addCommand(
    y,
    'checkout <rev>',
    "Write a commit's files, byte-identical and hash-verified; or with --tensor, chosen tensors as new safetensors files",
    (a) =>
      a
        .positional('rev', {
          type: 'string',
          demandOption: true,
          describe: 'revision: branch, tag, ID, NAME~N; REMOTE/BRANCH with --tensor fetches only those tensors first',
        })
        .option('to', { type: 'string', demandOption: true, describe: 'folder to write into' })
        .option('path', { type: 'string', array: true, describe: 'only this file or folder of the commit, repeatable' })
        .option('force', {
          type: 'boolean',
          default: false,
          describe:
            'replace existing files that differ (never a folder, and never a symlink on the way or at the file)',
        })
        .option('config', {
          type: 'string',
          describe: 'fail unless this config file is the one the commit was trained with (canonical hash)',
        })
        .option('allow-config-mismatch', {
          type: 'boolean',
          describe: 'with --config: check out anyway, with a warning',
        })
        .option('tensor', {
          type: 'string',
          array: true,
          describe:
            'instead of the files, write only the tensors matching this glob (a tensor NAME, or FILE:NAME if the glob has a colon): each file with a match becomes ' +
            'DIR/<path without extension>.safetensors. Repeatable; a leading ! excludes, and an exclude always wins whatever the order; ' +
            "with only excludes, every other tensor is taken. E.g. --tensor '*' --tensor '!optimizer.*'",
        }),
    async (args) => {
      // A bare --tensor parses as [], which would otherwise mean "no filter": a full checkout the user did not ask for.
      if (args.tensor?.length === 0)
        throw new CkvcError(
          'CKVC_USAGE',
          `--tensor needs a glob, e.g. --tensor 'model.*'; see 'ckvc checkout --help'`,
          {},
        );
      // Said if a signal stops the checkout: a folder that now mixes this commit's files with what it held before
      // must not pass for the commit (the files written are whole and verified; the others are as they were). The
      // paths go raw: the error is escaped as it is printed, and --json keeps them as they are.
      const done: string[] = [];
      setInterruptNote(() =>
        done.length
          ? `${writtenBefore(done)}; the other files there are as they were: run the checkout again to complete it`
          : undefined,
      );
      const showProgress = process.stderr.isTTY && !args.json;
      const r = await withStore(args, (s) =>
        s.checkout({
          rev: args.rev,
          to: args.to,
          paths: args.path ?? [],
          force: args.force,
          config: args.config,
          allowConfigMismatch: args.allowConfigMismatch,
          tensors: args.tensor ?? [],
          fetch: true,
          progress: (e) => {
            done.push(e.path);
            if (showProgress) info(`  ${escaped(e.path)} (${bytes(e.bytes)})`);
          },
        }),
      );
      setInterruptNote(() => undefined); // every file is in place: a late signal interrupts no checkout
      if (r.fetched?.warning) info(`ckvc: warning: ${escaped(r.fetched.warning)}`);
      else if (r.fetched?.result)
        info(
          `fetched from ${escaped(r.fetched.remote)} (only the selected tensors' data): ${r.fetched.result.objectsReceived} object(s), ${bytes(r.fetched.result.bytesReceived)}`,
        );
      if (r.configMismatch) {
        const keys = r.configMismatch.changes.map((c) => (c.path ? escaped(c.path) : '(whole config)'));
        info(
          `ckvc: WARNING: config mismatch: ${escaped(args.config ?? '')} (${short(r.configMismatch.given)}) is not the config ${short(r.commit)} was trained with (${r.configMismatch.expected ? short(r.configMismatch.expected) : 'none recorded'})${keys.length ? `; differing keys: ${keys.join(', ')}` : ''}; checked out anyway because of --allow-config-mismatch`,
        );
      }
      if (r.removedTemps)
        info(
          `ckvc: removed ${r.removedTemps.length} stale temp file(s) an interrupted checkout left, e.g. ${escaped(r.removedTemps[0]!)}`,
        );
      if (r.recentTemps) {
        const total = r.recentTemps.reduce((a, t) => a + t.bytes, 0);
        info(
          `ckvc: note: ${r.recentTemps.length} temp file(s) of another checkout, running or killed, are there (${bytes(total)}, e.g. ${escaped(r.recentTemps[0]!.path)}); a checkout writing into that folder removes them once untouched for 15 minutes (spec/FORMAT.md §9.2), or delete them if no checkout is running`,
        );
      }
      if (args.json) return json(r);
      if (r.tensorFiles) {
        for (const f of r.tensorFiles)
          out(
            `${escaped(f.path)}  ${f.tensors.length} tensor(s)  ${bytes(f.bytes)}  from ${escaped(f.source)}${f.written ? '' : '  (already identical)'}`,
          );
        const n = r.tensorFiles.reduce((a, f) => a + f.tensors.length, 0);
        info(
          `checked out ${n} tensor(s) of ${short(r.commit)} to ${escaped(r.to)} as safetensors: ${r.written.length} file(s) written (${bytes(r.bytes)}), ${r.unchanged.length} already identical`,
        );
        return;
      }
      for (const w of r.written) out(`${escaped(w.path)}${w.replaced ? '  (replaced a different file)' : ''}`);
      const replaced = r.written.filter((w) => w.replaced).length;
      info(
        `checked out ${short(r.commit)} to ${escaped(r.to)}: ${r.written.length} file(s) written (${bytes(r.bytes)}${replaced ? `; ${replaced} replaced a different file there` : ''}), ${r.unchanged.length} already identical`,
      );
      const o = r.otherFiles;
      if (o)
        info(
          `ckvc: note: ${escaped(r.to)} also holds ${o.complete ? '' : 'at least '}${o.count} file(s) that ${short(r.commit)} does not (left as they are), e.g. ${o.examples.map(escaped).join(', ')}; check out into an empty folder to have the commit alone`,
        );
    },
  );
}
