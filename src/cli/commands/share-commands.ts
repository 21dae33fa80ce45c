// Sharing between sites: bundles (pack, pull FILE), remotes (remote, push, fetch, pull REMOTE BRANCH) and serve.
import * as fs from 'node:fs';
import { CkvcError } from '../../core/errors.js';
import { parsePort } from '../../core/port-number.js';
import type { Progress } from '../../remote/sync.js';
import { addCommand, loadApi, withStore, type CliParser } from '../context.js';
import { setInterruptNote, untilFirstSignal } from '../interruption.js';
import { bytes, info, json, out, short } from '../render.js';
import { escaped, firstLine } from '../terminal-text.js';

/**
 * A one-line progress bar, only on a terminal. Each event follows a batch that went through whole (verified and
 * stored at its receiver), which an interruption then says stays (PROTOCOL.md §4: a re-run goes on from there).
 */
function progressBar(what: 'fetch' | 'pull' | 'push'): Progress {
  let kept = { objects: 0, bytes: 0 };
  const where = what === 'push' ? 'are on the remote' : 'are here';
  setInterruptNote(() =>
    kept.objects
      ? `the ${kept.objects} object(s) (${bytes(kept.bytes)}) of its finished batches ${where} and stay: run it again to go on`
      : undefined,
  );
  return (e) => {
    kept = { objects: e.objects, bytes: e.bytes };
    if (!process.stderr.isTTY) return;
    const pct = e.totalObjects ? Math.floor((100 * e.objects) / e.totalObjects) : 100;
    process.stderr.write(
      `\r${what}: ${pct}% (${e.objects}/${e.totalObjects} objects, ${bytes(e.bytes)})${e.objects === e.totalObjects ? '\n' : ''}`,
    );
  };
}

/** Refs a fetch left out, labels it kept: on stderr whatever the output mode (--json output lists them too). */
function warn(warnings: { code: string; message: string }[]): void {
  for (const w of warnings) info(`ckvc: warning (${w.code}): ${escaped(w.message)}`);
}

export function shareCommands(y: CliParser): void {
  packCommand(y);
  pullCommand(y);
  remoteCommand(y);
  pushCommand(y);
  fetchCommand(y);
  serveCommand(y);
}

function packCommand(y: CliParser): void {
  addCommand(
    y,
    'pack <revs..>',
    'Write a bundle of branches, tags or aliases: every object they need, or with --since only what those revisions lack',
    (a) =>
      a
        .positional('revs', { type: 'string', array: true, demandOption: true })
        .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'bundle file to write' })
        .option('since', {
          type: 'string',
          array: true,
          describe: 'the receiver has this revision: leave out its history (repeatable)',
        })
        .option('depth', { type: 'string', describe: 'only the last N commits of each ref (a shallow bundle)' }),
    async (args) => {
      const r = await withStore(args, (s) =>
        s.pack({ revs: args.revs, output: args.output, since: args.since, depth: args.depth }),
      );
      if (args.json) return json(r);
      // The commit each ref names, as verify prints it; an annotated tag also by its own ID and message.
      for (const ref of r.refs) {
        const tag = ref.message !== undefined ? `  (tag ${short(ref.id)}: ${firstLine(ref.message)})` : '';
        out(`${escaped(ref.name)}  ${short(ref.commit)}${tag}`);
      }
      const labels = r.labels.length ? `, ${r.labels.length} config label(s)` : '';
      const n = r.prerequisites.length;
      const needs = n ? `; needs ${n} prerequisite commit(s) at the receiver` : '';
      const counts = `${r.commits} commit(s), ${r.objects} object(s)${labels}`;
      const stops = r.shallow.length ? `; shallow: history stops at ${r.shallow.map(short).join(', ')}` : '';
      info(`wrote ${escaped(r.file)}: ${counts}, ${bytes(r.bytes)}${needs}${stops}`);
    },
  );
}

function pullCommand(y: CliParser): void {
  addCommand(
    y,
    'pull <source> [branch]',
    'Import a bundle FILE (refs arrive as bundle/<name> unless --update-refs), or fetch REMOTE and fast-forward BRANCH to it',
    (a) =>
      a
        .positional('source', { type: 'string', demandOption: true, describe: 'a bundle file' })
        .positional('branch', { type: 'string' })
        .option('update-refs', { type: 'boolean', describe: "set the bundle's refs themselves, not bundle/<name>" })
        .option('force', { type: 'boolean', describe: 'allow a ref to move to a commit that does not descend from it' })
        .option('token-file', { type: 'string', describe: "file with the remote's token (default: $CKVC_TOKEN)" }),
    async (args) => {
      const isFile = fs.existsSync(args.source) && fs.statSync(args.source).isFile();
      if (!isFile) {
        if (!args.branch)
          throw new CkvcError(
            'CKVC_INPUT_NOT_FOUND',
            `bundle ${args.source} does not exist; check the path (to pull from a remote, name the branch: ckvc pull REMOTE BRANCH)`,
            { path: args.source },
          );
        const r = await withStore(args, (s) =>
          s.pull({
            remote: args.source,
            branch: args.branch!,
            tokenFile: args.tokenFile,
            progress: progressBar('pull'),
          }),
        );
        warn(r.warnings);
        if (args.json) return json(r);
        for (const u of r.refs)
          if (!u.skipped) out(`${escaped(u.name)}  ${u.old ? short(u.old) : '(new)'.padEnd(12)} -> ${short(u.new)}`);
        info(
          `${escaped(r.branch.name.replace('refs/heads/', ''))}: ${r.branch.skipped === 'behind' ? `already up to date (ahead of ${escaped(r.remote)}/${escaped(args.branch!)})` : r.branch.skipped ? 'already up to date' : `${r.branch.old ? short(r.branch.old) : '(new)'} -> ${short(r.branch.new)}`}; received ${r.objectsReceived} object(s), ${bytes(r.bytesReceived)}`,
        );
        return;
      }
      const r = await withStore(args, (s) =>
        s.pullBundle({ file: args.source, updateRefs: args.updateRefs, force: args.force }),
      );
      warn(r.warnings);
      if (args.json) return json(r);
      for (const u of r.refs)
        out(
          u.skipped === 'behind'
            ? `${escaped(u.name)}  ${short(u.old!)}  (already holds ${short(u.new)} and more)`
            : `${escaped(u.name)}  ${u.old ? short(u.old) : '(new)'.padEnd(12)} -> ${short(u.new)}${u.skipped ? '  (unchanged)' : u.forced ? '  (forced)' : ''}`,
        );
      info(
        `imported ${escaped(r.file)}: ${r.objects} object(s), ${r.newObjects} new; ${r.refs.filter((u) => !u.skipped).length} ref(s) updated`,
      );
    },
  );
}

function remoteCommand(y: CliParser): void {
  addCommand(
    y,
    'remote <action> [name] [url]',
    'Manage remotes: add NAME URL (a store folder, http(s)://host:port/, s3://BUCKET/PREFIX, ' +
      'ssh://[user@]host[:port]/path or [user@]host:path), set NAME [URL] (new URL or settings), remove NAME, list',
    (a) =>
      a
        .positional('action', { choices: ['add', 'set', 'remove', 'list'] as const, demandOption: true })
        .positional('name', { type: 'string' })
        .positional('url', { type: 'string' })
        .option('single-writer', {
          type: 'boolean',
          describe:
            's3 only: push even if the service ignores conditional writes (unsafe unless one writer at a time pushes); set: --no-single-writer takes it back',
        })
        .option('remote-ckvc', {
          type: 'string',
          describe: 'SSH remotes: the command that runs ckvc on the far side (default: ckvc)',
        })
        .option('token-file', {
          type: 'string',
          describe: 'HTTP remotes: save the token in this file for later pushes (mode 0600)',
        })
        .option('force', {
          type: 'boolean',
          describe: 'remove: even when partial fetches left tensor data on this remote (they then cannot be read)',
        }),
    async (args) =>
      withStore(args, async (s) => {
        if (args.action === 'list') {
          const list = await s.remotes();
          if (args.json) return json(list);
          for (const r of list)
            out(
              `${escaped(r.name)}  ${escaped(r.url)}${r.singleWriter ? '  (single writer)' : ''}${r.remoteCkvc !== undefined ? `  (remote ckvc: ${escaped(r.remoteCkvc)})` : ''}`,
            );
          return;
        }
        if (!args.name || (args.action === 'add' && !args.url))
          throw new CkvcError(
            'CKVC_USAGE',
            `usage: ckvc remote ${args.action === 'add' ? 'add NAME URL' : args.action === 'set' ? 'set NAME [URL] [options]' : 'remove NAME'}`,
            {},
          );
        const settings = { singleWriter: args.singleWriter, remoteCkvc: args.remoteCkvc, tokenFile: args.tokenFile };
        const r =
          args.action === 'add'
            ? await s.addRemote(args.name, args.url!, settings)
            : args.action === 'set'
              ? await s.setRemote(args.name, args.url, settings)
              : await s.removeRemote(args.name, { force: args.force });
        if (args.json) return json(r);
        const done = { add: 'added', set: 'changed', remove: 'removed' }[args.action];
        const flags = r.singleWriter ? ', single writer' : '';
        return info(`${done} remote ${escaped(r.name)} (${escaped(r.url)}${flags})`);
      }),
  );
}

function pushCommand(y: CliParser): void {
  addCommand(
    y,
    'push <remote> [refs..]',
    'Send branches or tags (default: the current branch) and what they need that the remote lacks; move its refs by compare-and-swap',
    (a) =>
      a
        .positional('remote', { type: 'string', demandOption: true })
        .positional('refs', { type: 'string', array: true })
        .option('force', { type: 'boolean', describe: 'replace a remote branch even if the push drops its commits' })
        .option('depth', { type: 'string', describe: 'only the last N commits of each ref (a shallow push)' })
        .option('delete', {
          type: 'boolean',
          describe:
            'delete these branches or tags on the remote (it keeps their reflogs); heads/NAME, tags/NAME say which',
        })
        .option('token-file', { type: 'string', describe: "file with the remote's token (default: $CKVC_TOKEN)" }),
    async (args) => {
      if (args.delete) {
        if (args.force || args.depth !== undefined)
          throw new CkvcError('CKVC_USAGE', 'push --delete takes no --force or --depth: it sends nothing', {});
        const d = await withStore(args, (s) =>
          s.deleteOnRemote({ remote: args.remote, refs: args.refs ?? [], tokenFile: args.tokenFile }),
        );
        if (args.json) return json(d);
        for (const u of d.deleted) out(`${escaped(u.name)}  ${short(u.old)} -> (deleted)`);
        info(
          `deleted on ${escaped(d.remote)}: ${d.deleted.length} ref(s); their commits stay there (a store's reflog ` +
            'keeps them until it expires; an S3 remote keeps every pack)',
        );
        warn(d.warnings);
        return;
      }
      const r = await withStore(args, (s) =>
        s.push({
          remote: args.remote,
          refs: args.refs,
          force: args.force,
          depth: args.depth,
          tokenFile: args.tokenFile,
          progress: progressBar('push'),
        }),
      );
      if (args.json) return json(r);
      for (const u of r.refs)
        out(
          `${escaped(u.name)}  ${u.old ? short(u.old) : '(new)'.padEnd(12)} -> ${short(u.new)}${u.skipped ? '  (up to date)' : u.forced ? '  (forced)' : ''}`,
        );
      info(
        `pushed to ${escaped(r.remote)}: ${r.commits} commit(s), ${r.objectsSent} object(s), ${bytes(r.bytesSent)} sent`,
      );
    },
  );
}

function fetchCommand(y: CliParser): void {
  addCommand(
    y,
    'fetch <remote> [branches..]',
    'Receive what the remote has and this store lacks (only BRANCHES when named: no other branch, no tag); its branches land as REMOTE/BRANCH',
    (a) =>
      a
        .positional('remote', { type: 'string', demandOption: true })
        .positional('branches', { type: 'string', array: true })
        .option('token-file', { type: 'string', describe: "file with the remote's token (default: $CKVC_TOKEN)" })
        .option('filter', {
          type: 'string',
          array: true,
          describe:
            "tensors:GLOB — fetch commits, trees and file recipes but only the data of matching tensors (a partial store; the rest is fetched on demand). Repeatable; 'tensors:!GLOB' excludes. Remembered for the remote's later fetches and pulls; --no-filter fetches everything and forgets it",
        })
        .option('prune', {
          type: 'boolean',
          describe: 'drop REMOTE/BRANCH refs whose branch the remote no longer has (their reflogs keep the commits)',
        }),
    async (args) => {
      const filter = args.filter && parseFetchFilter(args.filter as (string | boolean)[]);
      const r = await withStore(args, (s) =>
        s.fetch({
          remote: args.remote,
          tokenFile: args.tokenFile,
          progress: progressBar('fetch'),
          filter,
          prune: args.prune,
          ...(args.branches?.length ? { branches: args.branches } : {}),
        }),
      );
      warn(r.warnings);
      if (args.json) return json(r);
      for (const u of r.refs)
        if (!u.skipped)
          out(
            `${escaped(u.name.replace(/^refs\/remotes\//, ''))}  ${u.old ? short(u.old) : '(new)'.padEnd(12)} -> ${short(u.new)}`,
          );
      for (const p of r.pruned ?? [])
        out(`${escaped(p.name.replace(/^refs\/remotes\//, ''))}  ${short(p.old)} -> (gone from the remote: dropped)`);
      const whole = r.bytesDownloaded ? ` (${bytes(r.bytesDownloaded)} downloaded from S3 for it)` : '';
      info(
        `fetched from ${escaped(r.remote)}: ${r.objectsReceived} object(s), ${bytes(r.bytesReceived)} received${whole}`,
      );
      if (r.partial)
        info(
          `${r.partial} commit(s) fetched partially: other tensors' data stays on ${escaped(r.remote)} until needed`,
        );
      if (r.completed) info(`${r.completed} partially fetched commit(s) now complete`);
      if (r.filterRemembered)
        info(
          `filter ${r.filterRemembered.map((g) => `tensors:${escaped(g)}`).join(' ')} is kept for ${escaped(r.remote)}: later fetches and pulls take only those tensors' data; 'ckvc fetch ${escaped(r.remote)} --no-filter' takes the rest`,
        );
      if (r.refs.length === 0 && r.objectsReceived === 0)
        info(`remote ${escaped(r.remote)} has no branches or tags (is its URL right? 'ckvc remote list' shows it)`);
    },
  );
}

function serveCommand(y: CliParser): void {
  addCommand(
    y,
    'serve [path]',
    'Serve this store over HTTP for push, fetch and pull (loopback unless --host; writes need --token-file)',
    (a) =>
      a
        .positional('path', { type: 'string', describe: 'the store to serve (default: --store, else the nearest)' })
        .option('stdio', {
          type: 'boolean',
          describe: 'serve one connection on stdin/stdout (what an ssh remote runs)',
        })
        .option('port', { type: 'string', default: '8765', describe: 'port (0: any free port)' })
        .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to bind' })
        .option('token-file', {
          type: 'string',
          describe: 'file holding the token writes must present; without it the server is read-only',
        })
        .option('read-only', { type: 'boolean', describe: 'refuse every write' }),
    async (args) => {
      const root = await withStore({ ...args, store: args.path ?? args.store }, async (s) => s.root);
      const log = (l: string) => info(escaped(l));
      if (args.stdio) {
        await (await loadApi()).serveOnStdio({ store: root, readOnly: args.readOnly, log });
        return;
      }
      // The web page at / beside the protocol, under the server's address and token (spec/UI.md §2).
      const { createUiHandler } = await import('../../ui/ui-server.js');
      const page = (access: { host: string; token?: string }) => createUiHandler({ store: root, ...access, log });
      const { url, server } = await (await loadApi()).serve({
        store: root,
        host: args.host,
        port: parsePort(args.port),
        tokenFile: args.tokenFile,
        readOnly: args.readOnly,
        log,
        page,
      });
      if (args.json) json({ url, store: root });
      else out(escaped(url));
      info(
        `serving ${escaped(root)} at ${escaped(url)}${args.readOnly || !args.tokenFile ? ' (read-only)' : ''}; Ctrl-C stops`,
      );
      await untilFirstSignal();
      // Stop taking requests, drop idle keep-alive connections, and let the process end.
      server.close();
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 2000).unref();
    },
  );
}

/**
 * `--filter tensors:GLOB` (repeatable) -> the globs; `--no-filter` (yargs gives [false]) -> false; anything else is
 * a usage error naming the form.
 */
function parseFetchFilter(given: (string | boolean)[]): string[] | false {
  if (given.length === 1 && given[0] === false) return false;
  const values = given.map(String);
  const bad = given.find((v) => typeof v !== 'string' || !v.startsWith('tensors:') || v === 'tensors:');
  if (bad !== undefined || values.length === 0)
    throw new CkvcError(
      'CKVC_USAGE',
      `--filter takes tensors:GLOB (e.g. --filter 'tensors:model.*'), not ${typeof bad === 'string' ? JSON.stringify(bad) : 'that with --no-filter'}`,
      { option: 'filter', values },
    );
  return values.map((v) => v.slice('tensors:'.length));
}
