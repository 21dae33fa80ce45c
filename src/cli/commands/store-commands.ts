import { CkvcError } from '../../core/errors.js';
import { DEFAULT_GC_GRACE } from '../../core/retention-defaults.js';
import { addCommand, loadApi, loadStoreApi, withStore, type CliParser } from '../context.js';
import { bytes, info, json, metrics, out, short, time } from '../render.js';
import { escaped, firstLine } from '../terminal-text.js';

export function storeCommands(y: CliParser): void {
  initCommand(y);
  statusCommand(y);
  statsCommand(y);
  verifyCommand(y);
  repairCommand(y);
  indexCommand(y);
}

function initCommand(y: CliParser): void {
  addCommand(
    y,
    'init [dir]',
    'Create a store in DIR/.ckvc (DIR defaults to the current directory)',
    (a) => a.positional('dir', { type: 'string', default: '.' }),
    async (args) => {
      // --store names an existing store to every other command; init would ignore it and create the store in
      // the current folder instead, where the user did not ask for one.
      if (args.store !== undefined)
        throw new CkvcError(
          'CKVC_USAGE',
          `init takes the folder to create the store in as its argument, not --store: run 'ckvc init ${args.store}' (it creates ${args.store}/.ckvc, which --store ${args.store} then finds)`,
          { option: 'store', values: [args.store] },
        );
      const r = await (await loadStoreApi()).initStore(args.dir);
      if (args.json) return json(r);
      info(
        r.created
          ? `initialised empty ckvc store in ${escaped(r.root)}`
          : `${escaped(r.root)} is already a ckvc store; nothing changed`,
      );
    },
  );
}

function statusCommand(y: CliParser): void {
  addCommand(
    y,
    'status',
    'Show the store, the current branch and its last commit',
    (a) => a,
    async (args) => {
      const r = await withStore(args, (s) => s.status());
      if (args.json) return json(r);
      out(`store:  ${escaped(r.store)}`);
      out(r.head.branch ? `branch: ${escaped(r.head.branch)}` : `HEAD detached at ${short(r.head.detached!)}`);
      if (r.tip)
        out(
          `tip:    ${short(r.tip.id)} ${time(r.tip.time)} ${[r.tip.step !== undefined ? `step=${r.tip.step}` : '', metrics(r.tip.metrics)].filter(Boolean).join(' ')}  ${firstLine(r.tip.message)}`,
        );
      else out('tip:    (no commits yet)');
      out(`${r.branches} branch(es), ${r.tags} tag(s)`);
    },
  );
}

function statsCommand(y: CliParser): void {
  addCommand(
    y,
    'stats',
    'Logical vs stored bytes, dedup and compression ratios, object counts',
    (a) => a,
    async (args) => {
      const r = await withStore(args, (s) => s.stats());
      if (args.json) return json(r);
      out(`commits:        ${r.commits}`);
      out(`logical bytes:  ${bytes(r.logicalBytes)} (${r.logicalBytes})`);
      out(`unique bytes:   ${bytes(r.uniqueBytes)} (file data after dedup, ${r.dedupRatio.toFixed(2)}x)`);
      out(`metadata bytes: ${bytes(r.metadataBytes)} (commits, trees, recipes, tensor entries, configs)`);
      out(`stored bytes:   ${bytes(r.storedBytes)} (after compression, ${r.compressionRatio.toFixed(2)}x)`);
      // A store can hold more than its files' bytes (small files beside commits and trees, data that does not
      // compress): said as such rather than as "0.01x smaller".
      out(
        r.totalRatio >= 1 || r.logicalBytes === 0
          ? `overall:        ${r.totalRatio.toFixed(2)}x smaller than plain copies`
          : `overall:        ${(r.storedBytes / r.logicalBytes).toFixed(2)}x the size of plain copies`,
      );
      out(
        r.deltas.chunks
          ? `deltas:         ${r.deltas.chunks} chunk(s), ${bytes(r.deltas.rawBytes)} stored in ${bytes(r.deltas.storedBytes)} (${r.deltas.ratio.toFixed(2)}x)`
          : 'deltas:         none',
      );
      out(`packs:          ${r.packs}`);
      out(
        `objects:        ${Object.entries(r.objects)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
      );
      for (const [remote, n] of Object.entries(r.partial))
        out(
          `partial:        ${n} commit(s) with tensor data left out by a partial fetch, available from ${escaped(remote)}`,
        );
      // Logical bytes count every file of every commit, the data a partial fetch left out too.
      if (Object.keys(r.partial).length)
        out('                (the ratios above count that left-out data as logical bytes, so they overstate)');
    },
  );
}

/** The checkpoints the problems cost, a line each: the commit, the refs naming it, the files it can no longer rebuild. */
function printDamaged(damaged: { commit: string; refs: string[]; paths: string[]; unreadable?: string }[]): void {
  if (!damaged.length) return;
  const SHOWN = 20;
  out(`damaged: ${damaged.length} commit(s) can no longer be checked out whole:`);
  for (const d of damaged.slice(0, SHOWN)) {
    const refs = d.refs.length ? ` (${d.refs.map(escaped).join(', ')})` : '';
    const what = d.unreadable
      ? `its ${d.unreadable} cannot be read`
      : `${d.paths.slice(0, 5).map(escaped).join(', ')}${d.paths.length > 5 ? `, ... (${d.paths.length - 5} more)` : ''}`;
    out(`  ${short(d.commit)}${refs}: ${what}`);
  }
  if (damaged.length > SHOWN) out(`  ... and ${damaged.length - SHOWN} more (--json lists them)`);
}

function verifyCommand(y: CliParser): void {
  addCommand(
    y,
    'verify [file]',
    'Check the store: refs, history, packs and index (--read-data re-hashes every object); or check a bundle FILE, no store needed',
    (a) =>
      a
        .positional('file', { type: 'string', describe: 'a bundle to check instead of the store' })
        .option('read-data', { type: 'boolean', default: false, describe: 're-read and re-hash every stored object' })
        .option('markdown', {
          type: 'boolean',
          describe: 'with FILE: print a table of refs, commits, metrics and configs for release notes',
        }),
    async (args) => {
      if (args.file !== undefined) return verifyBundleCommand(args.file, args);
      const r = await withStore(args, (s) => s.verify({ readData: args.readData }));
      if (args.json) json(r);
      else {
        for (const p of r.problems) out(`${p.code}  [${p.phase}]  ${escaped(p.message)}`);
        printDamaged(r.damaged);
        const c = r.checked;
        info(
          `checked ${c.refs} ref(s), ${c.commits} commit(s), ${c.trees} tree(s), ${c.files} file(s), ${c.tensors} tensor(s), ${c.chunks} chunk(s), ${c.packs} pack(s)${args.readData ? `, re-hashed ${c.objectsRead} object(s)` : ''}`,
        );
        for (const sh of r.shallow) info(`history stops at ${short(sh.commit)} (shallow)`);
        info(
          r.ok
            ? `no problems found${args.readData ? '' : " (stored data not re-read: after a disk problem, 'ckvc verify --read-data' re-hashes every byte)"}`
            : `${r.problems.length} problem(s) found`,
        );
        if (r.damaged.length)
          info(
            "to mend it from a remote or a bundle file that holds what was lost: 'ckvc repair --from REMOTE_OR_FILE' ('--dry-run' first says what each holds)",
          );
        if (r.setAside.packs)
          info(
            `note: damaged/ of the store holds ${r.setAside.packs} damaged pack(s) that ckvc repair set aside (${bytes(r.setAside.bytes)}), not read; delete them once their bytes are of no more use`,
          );
        const l = r.leftovers;
        if (l.count) {
          const shown = l.paths.slice(0, 5).join(', ') + (l.count > 5 ? `, ... (${l.count - 5} more)` : '');
          info(
            `warning: ${l.count} leftover(s) of interrupted commands, ${bytes(l.bytes)}: ${shown}; 'ckvc gc' removes them once older than its grace period (${DEFAULT_GC_GRACE}), 'ckvc gc --grace 0' at once`,
          );
        }
      }
      if (!r.ok) {
        throw new CkvcError(
          'CKVC_VERIFY_FAILED',
          `verify found ${r.problems.length} problem(s)`,
          { problems: r.problems.length },
          { reported: true },
        );
      }
    },
  );
}

function repairCommand(y: CliParser): void {
  addCommand(
    y,
    'repair',
    'Mend a damaged store from remotes or bundle files holding its lost objects: sound records are kept, damaged pack files moved to .ckvc/damaged/, what was lost fetched again and verified',
    (a) =>
      a
        .option('from', {
          type: 'string',
          array: true,
          demandOption: true,
          describe: 'a remote name or a bundle file to take lost objects from (repeat it: asked in that order)',
        })
        .option('dry-run', { type: 'boolean', describe: 'check and say what the sources hold; change nothing' })
        .option('token-file', { type: 'string', describe: "file with the remote's token (default: $CKVC_TOKEN)" }),
    async (args) => {
      const r = await withStore(args, (s) =>
        s.repair({ from: args.from.map(String), dryRun: args.dryRun, tokenFile: args.tokenFile }),
      );
      if (args.json) json(r);
      else {
        const sv = r.salvaged;
        if (sv.packs)
          info(
            `salvaged ${sv.packs} damaged pack(s) (${bytes(sv.bytes)}, kept in damaged/ of the store): ${sv.kept} sound record(s) copied, ${sv.dropped} object(s) lost with them${sv.rewritten ? `; ${sv.rewritten} other pack(s) rewritten so that no delta needs a lost record` : ''}`,
          );
        for (const src of r.sources) {
          const got = r.dryRun ? '' : `; ${src.restored} restored${src.bytes ? `, ${bytes(src.bytes)} received` : ''}`;
          info(`${escaped(src.source)}: holds ${src.held} of the ${src.asked} lost object(s) asked of it${got}`);
          if (src.error)
            info(
              `ckvc: warning (${src.error.code}): ${escaped(src.source)} failed, so it was asked nothing more: ${escaped(src.error.message)}`,
            );
        }
        if (r.reflogUnrepaired)
          info(
            `note: ${r.reflogUnrepaired} lost object(s) that only reflog lines reach (a deleted branch, a replaced tip) were held by no source; no ref needs them`,
          );
        if (r.otherProblems)
          info(
            `note: ${r.otherProblems} problem(s) are not lost objects (a damaged ref or prune record) and repair leaves them: 'ckvc verify' lists them`,
          );
        if (r.dryRun) {
          printDamaged(r.damaged);
          info(
            r.sources.length
              ? `dry run: nothing was changed; ${r.unrepaired} lost object(s) no source holds (more may show below lost commits, trees and file recipes once they are back)`
              : 'no damaged or missing objects found; nothing to repair',
          );
        } else if (r.whole)
          info(
            r.sources.length
              ? 'the store is whole again: no object it needs is damaged or missing'
              : 'no damaged or missing objects found; nothing to repair (the store was left as it was)',
          );
        else printDamaged(r.damaged);
      }
      if (r.dryRun && r.unrepaired)
        throw new CkvcError(
          'CKVC_NOT_REPAIRED',
          `a repair would leave ${r.unrepaired} lost object(s) that no source given holds (${r.sources.map((x) => x.source).join('; ')}): give another --from that has them`,
          { unrepaired: r.unrepaired, damaged: r.damaged.length },
        );
      if (!r.dryRun && !r.whole) {
        // A tip no copy has is lost for good: what is left is to move the branch back to where it was before.
        const tip = r.damaged.find((d) => d.unreadable === 'commit' && d.refs.length)?.refs[0];
        const back = tip
          ? `; a ref whose own commit no copy has can be moved back: 'ckvc reflog ${tip.replace(/^tags\//, '--tag ')}' lists where it was, 'ckvc branch -f NAME ID' moves a branch`
          : '';
        throw new CkvcError(
          'CKVC_NOT_REPAIRED',
          `${r.unrepaired} lost object(s) were held by no source given (${r.sources.map((x) => `${x.source}${x.error ? `, which failed: ${x.error.code}` : ''}`).join('; ')}); the commits listed still cannot be checked out whole: run repair again with --from a remote or bundle that has them (a damaged pack's bytes stay in damaged/ of the store)${back}`,
          { unrepaired: r.unrepaired, damaged: r.damaged.length },
        );
      }
    },
  );
}

function indexCommand(y: CliParser): void {
  addCommand(
    y,
    'index <action>',
    'Maintain the index cache: `ckvc index rebuild` re-creates it from the packs',
    (a) => a.positional('action', { choices: ['rebuild'] as const, demandOption: true }),
    async (args) => {
      const r = await withStore(args, (s) => s.rebuildIndex());
      if (args.json) return json(r);
      info(`index rebuilt: ${r.objects} object(s) in ${r.packs} pack(s)`);
    },
  );
}

/** How a bundle's pruned commits are said: their released data is not in it, and cannot be checked out from it. */
function prunedNote(n: number): string {
  return `${n} commit(s) were pruned before packing: the data their prune released is not in the bundle (their metadata is)`;
}

async function verifyBundleCommand(file: string, args: { json?: boolean; markdown?: boolean }): Promise<void> {
  const r = await (await loadApi()).verifyBundle(file);
  if (args.json) return json(r);
  const byId = new Map(r.commits.map((c) => [c.id, c]));
  const labels = new Map(r.labels.map((l) => [l.config, l.text]));
  if (args.markdown) {
    out(
      `Bundle \`${escaped(file)}\`: ${r.objects} objects, ${bytes(r.bytes)}, verified (every object re-hashed)${r.prerequisites.length ? `; needs ${r.prerequisites.map((p) => `\`${short(p)}\``).join(', ')}` : ''}${r.shallow.length ? `; history stops at ${r.shallow.map((p) => `\`${short(p)}\``).join(', ')} (shallow)` : ''}${r.pruned.length ? `; ${prunedNote(r.pruned.length)}` : ''}.`,
    );
    out('');
    out('| ref | commit | step | metrics | config | message | tag message |');
    out('| --- | --- | --- | --- | --- | --- | --- |');
    // Escaped first, so a newline cannot end the table row; then | cannot end the cell.
    const cell = (s: string) => escaped(s).replace(/\|/g, '\\|');
    for (const ref of r.refs) {
      const c = byId.get(ref.commit);
      const label = c?.configHash && labels.get(c.configHash);
      const config = c?.configHash ? `\`${short(c.configHash)}\`${label ? ` ${cell(label)}` : ''}` : '';
      const cells = [
        cell(ref.name.replace(/^refs\/(heads|tags|aliases)\//, '')),
        `\`${short(ref.commit)}\``,
        `${c?.step ?? ''}`,
        cell(c ? metrics(c.metrics) : '(prerequisite)'),
        config,
        cell(c ? firstLine(c.message) : ''),
        ref.message !== undefined ? cell(firstLine(ref.message)) : '',
      ];
      out(`| ${cells.join(' | ')} |`);
    }
    return;
  }
  for (const ref of r.refs) {
    const c = byId.get(ref.commit);
    const label = c?.configHash && labels.get(c.configHash);
    const config = c?.configHash ? `  config ${short(c.configHash)}${label ? ` (${escaped(label)})` : ''}` : '';
    const tag = ref.message !== undefined ? `  [tag: ${firstLine(ref.message)}]` : '';
    const step = c?.step !== undefined ? `step=${c.step} ` : '';
    const about = c ? `  ${step}${metrics(c.metrics)}${config}  ${firstLine(c.message)}` : '  (in the prerequisites)';
    out(`${escaped(ref.name)}  ${short(ref.commit)}${about}${tag}`);
  }
  for (const id of r.shallow) info(`history stops at ${short(id)} (shallow)`);
  // A backup's reader must know that some of its checkpoints are metadata only.
  if (r.pruned.length) info(`${prunedNote(r.pruned.length)}: ${r.pruned.map((p) => short(p.commit)).join(', ')}`);
  info(
    `bundle ${escaped(file)}: ${r.objects} object(s), ${r.commits.length} commit(s), ${bytes(r.bytes)}; every object re-hashed, trailer and pack checksum match${r.prerequisites.length ? `; needs ${r.prerequisites.length} prerequisite commit(s) (${r.fromPrerequisites} object(s) expected from them)` : r.shallow.length ? '; shallow (no prerequisites)' : '; self-contained'}`,
  );
}
