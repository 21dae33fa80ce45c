import type { Argv } from 'yargs';
import { withStore, type GlobalArgs } from '../context.js';
import { bytes, info, json, out, short } from '../render.js';

interface CheckoutArgs extends GlobalArgs {
  rev: string;
  to: string;
  path?: string[];
  force?: boolean;
}

export function checkoutCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command<CheckoutArgs>(
    'checkout <rev>',
    'Write a commit\'s files, byte-identical and hash-verified',
    (a) => a
      .positional('rev', { type: 'string', demandOption: true, describe: 'revision: branch, tag, ID, NAME~N' })
      .option('to', { type: 'string', demandOption: true, describe: 'folder to write into' })
      .option('path', { type: 'string', array: true, describe: 'only this file or folder of the commit, repeatable' })
      .option('force', { type: 'boolean', default: false, describe: 'replace existing files that differ' }) as unknown as Argv<CheckoutArgs>,
    async (args) => {
      const r = await withStore(args, (s) => s.checkout({
        rev: args.rev, to: args.to, paths: args.path ?? [], force: args.force,
        progress: process.stderr.isTTY && !args.json ? (e) => info(`  ${e.path} (${bytes(e.bytes)})`) : undefined,
      }));
      if (args.json) return json(r);
      for (const w of r.written) out(w.path);
      info(`checked out ${short(r.commit)} to ${r.to}: ${r.written.length} file(s) written (${bytes(r.bytes)}), ${r.unchanged.length} already identical`);
    },
  );
}
