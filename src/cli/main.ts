// The ckvc command line: parse -> api -> render. One catch turns every error into a one-line message on stderr
// (control characters escaped; with --json, an exact JSON object) and the exit code its CkvcError code maps to
// (spec/EXIT_CODES.md).
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { BufferPool } from '../core/buffer-pool.js';
import { CkvcError, EXIT } from '../core/errors.js';
import { checkoutCommand } from './commands/checkout-command.js';
import { commitCommand } from './commands/commit-command.js';
import { configCommands } from './commands/config-commands.js';
import { curateCommands } from './commands/curate-commands.js';
import { retentionCommands } from './commands/retention-commands.js';
import { historyCommands } from './commands/history-commands.js';
import { refCommands } from './commands/ref-commands.js';
import { shareCommands } from './commands/share-commands.js';
import { storeCommands } from './commands/store-commands.js';
import { uiCommand } from './commands/ui-command.js';
import { watchCommand } from './commands/watch-command.js';
import { GLOBAL_OPTIONS, type CliParser } from './context.js';
import { exitOnInterrupt } from './interruption.js';
import { refusePositionalGivenAsOption } from './positional-options.js';
import { refuseRepeatedOptions } from './repeated-options.js';
import { escaped, escapedLines } from './terminal-text.js';
import { commandNames, refuseDoubleDash, usageInstance, usageMessage } from './usage-message.js';
import { cliVersion } from './version.js';

/** Messages quote names and paths (a ref from a bundle, a file name with a newline): one escaped line. Only an
 * internal error keeps its line breaks, for the stack trace; each of its lines is escaped too. */
function humanMessage(err: CkvcError): string {
  return err.code === 'CKVC_INTERNAL' ? escapedLines(err.message).join('\n') : escaped(err.message);
}

function report(e: unknown, asJson: boolean): number {
  const err =
    e instanceof CkvcError
      ? e
      : new CkvcError('CKVC_INTERNAL', `unexpected error: ${(e as Error)?.stack ?? String(e)}`, {});
  if (asJson) process.stderr.write(`${JSON.stringify({ error: err.toJSON() })}\n`);
  else if (!err.reported) process.stderr.write(`ckvc: ${humanMessage(err)} [${err.code}]\n`);
  return err.exitCode;
}

/** yargs renders a command's whole help text before running it, in case the handler fails and help is to be
 * shown beside the error: 60-70 ms of string measuring on every command. Our fail handler throws instead of
 * showing help, so that text is never used; `--help` itself renders help afresh and is not affected. */
function skipHelpCache(parser: CliParser): void {
  const internal = usageInstance<{ cacheHelpMessage: () => void }>(parser);
  if (internal?.cacheHelpMessage) internal.cacheHelpMessage = () => undefined;
}

export async function run(argv: string[]): Promise<number> {
  const asJson = argv.includes('--json');
  let commands: ReadonlySet<string> = new Set();
  const parser = yargs(argv)
    .scriptName('ckvc')
    // Words after `--` go to their own key, apart from option values (`-m --` is a message), to be refused.
    .parserConfiguration({ 'populate--': true })
    .usage('ckvc: Git for ML training checkpoints\n\nUsage: ckvc <command> [options]')
    .options(GLOBAL_OPTIONS)
    .strict()
    .demandCommand(1, 'give a command; `ckvc --help` lists them')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(cliVersion())
    // ckvc speaks English; and the bundled CLI has no yargs locale files to pick another language from.
    .locale('en')
    .wrap(Math.min(120, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err, failed) => {
      // Throwing stops yargs before any command handler runs: a malformed command line does nothing.
      if (!err) refuseDoubleDash(argv); // what yargs refused may be only the words it set aside
      throw err ?? new CkvcError('CKVC_USAGE', usageMessage(msg, argv, failed, commands), {});
    });
  // Global and before validation: every command, every option, and no handler ever sees the array.
  parser.middleware((args) => refuseRepeatedOptions(args, parser), true);
  parser.middleware((args) => refusePositionalGivenAsOption(argv, args, parser), true);
  parser.middleware((args) => refuseDoubleDash(argv, args['--'] ?? []), true);
  storeCommands(parser);
  commitCommand(parser);
  checkoutCommand(parser);
  historyCommands(parser);
  refCommands(parser);
  curateCommands(parser);
  retentionCommands(parser);
  configCommands(parser);
  shareCommands(parser);
  watchCommand(parser);
  uiCommand(parser);
  skipHelpCache(parser);
  commands = commandNames(parser);
  try {
    await parser.parseAsync();
  } catch (e) {
    return report(e, asJson);
  }
  return EXIT.OK;
}

export async function main(): Promise<void> {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    // `ckvc log | head`: a closed pipe is the reader saying it has enough, not an error.
    if (e.code === 'EPIPE') process.exit(0);
    // `ckvc cat REV:PATH > file` on a full disk: the one-line error every command gives, not a stack trace.
    const hint = e.code === 'ENOSPC' ? 'free some disk space and retry' : 'check where the output goes and retry';
    const err = new CkvcError('CKVC_IO', `cannot write to the standard output: ${e.code ?? e.message}; ${hint}`, {
      errno: e.code,
    });
    process.exit(report(err, process.argv.includes('--json')));
  });
  // Test runs (CKVC_TEST_FAULTS, spec/FAULTS.md) overwrite pooled buffers as they are handed back: a read after
  // the release shows as a failed hash check instead of passing while the block happens not to be reused.
  if (process.env.CKVC_TEST_FAULTS === '1') BufferPool.poisonReleased = true;
  const argv = hideBin(process.argv);
  if (argv.length === 1 && argv[0] === 'helper-server') {
    // Not a yargs command: the server calls run() once per request, each with a yargs of its own (spec/HELPER.md).
    const { serveHelper } = await import('./helper-server.js');
    process.exitCode = await serveHelper(run);
    return;
  }
  const uninstall = exitOnInterrupt((e) => report(e, argv.includes('--json')));
  process.exitCode = await run(argv);
  // The command is done: a signal while the process winds down is no interruption of it.
  uninstall();
}
