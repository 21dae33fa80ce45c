// What a malformed command line is told: yargs' own messages name options by their keys in every spelling
// ("Unknown arguments: dry-run, dryRun"); these name them as typed, with the option a typo meant and the help to
// read. The yargs internals read here (the fail handler's usage instance, the top-level command list) degrade to
// plainer messages if they change, never to a failure.
import { CkvcError } from '../core/errors.js';
import { didYouMean } from '../core/similar-names.js';
import { GLOBAL_OPTIONS } from './context.js';

/** An option as typed (`--dry-run`, `-x`, `--no-color`), with the keys yargs may report it under. */
interface TypedOption {
  token: string;
  keys: string[];
}

const camel = (k: string) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** The options of `argv` as typed, up to a `--` (after which every word is an argument). */
function typedOptions(argv: string[]): TypedOption[] {
  const out: TypedOption[] = [];
  for (const a of argv) {
    if (a === '--') break;
    if (a.startsWith('--')) {
      const name = a.slice(2).replace(/=.*$/, '');
      const keys = [name, camel(name)];
      if (name.startsWith('no-')) keys.push(name.slice(3), camel(name.slice(3)));
      if (name.includes('.')) keys.push(name.split('.')[0]!);
      out.push({ token: `--${name}`, keys });
    } else if (/^-[^-\d]/.test(a)) {
      // -x, or -xz (two short options at once)
      for (const c of a.slice(1).replace(/=.*$/, '')) out.push({ token: `-${c}`, keys: [c] });
    }
  }
  return out;
}

/** The command of `argv`: its first word that is not an option or a global option's value, if a known command. */
function commandOf(argv: string[], commands: ReadonlySet<string>): string | undefined {
  const takesValue = new Set(
    Object.entries(GLOBAL_OPTIONS)
      .filter(([, o]) => o.type === 'string')
      .map(([k]) => `--${k}`),
  );
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (takesValue.has(a)) i++;
    else if (!a.startsWith('-')) return commands.has(a) ? a : undefined;
  }
  return undefined;
}

/**
 * The message for yargs' `msg`. `failed` is the usage instance yargs passes its fail handler (its descriptions
 * are the options of the command parsed); `commands` the top-level command names.
 */
export function usageMessage(msg: string, argv: string[], failed: unknown, commands: ReadonlySet<string>): string {
  const m = /^Unknown arguments?: (.+)$/.exec(msg);
  const command = commandOf(argv, commands);
  // yargs' other messages can span lines ("Invalid values:\n  Argument: ..."): one line, as every error is.
  if (!m) {
    const said = optionsNamed(msg).replace(/\s*\n\s*/g, ' ');
    return said.includes('--help') ? said : `${said}; see 'ckvc${command ? ` ${command}` : ''} --help'`;
  }
  const typed = typedOptions(argv);
  const known = (failed as { getDescriptions?: () => Record<string, unknown> } | undefined)?.getDescriptions?.();
  const options = Object.keys(known ?? {}).filter((k) => k.length > 1 && !/[A-Z]/.test(k));
  const named = new Set<string>();
  let words = 0;
  for (const key of m[1]!.split(', ')) {
    const t = typed.find((o) => o.keys.includes(key));
    if (!t) {
      words++;
      named.add(`'${key}'`);
    } else if (t.token.startsWith('--')) {
      const name = t.token.slice(2).replace(/^no-/, '');
      named.add(`${t.token}${didYouMean(name, options).replace(/'([^']+)'/g, "'--$1'")}`);
    } else named.add(t.token);
  }
  if (!command && words > 0 && words === named.size)
    return `unknown command ${[...named].join(', ')}; 'ckvc --help' lists the commands`;
  const what = words === 0 ? 'option' : 'argument';
  const help = command ? `'ckvc ${command} --help'` : "'ckvc --help'";
  return `unknown ${what}${named.size > 1 ? 's' : ''} ${[...named].join(', ')}; ${help} lists what it takes`;
}

/** yargs names a missing option by its key ("Missing required argument: message"): written as typed, `--message`. */
function optionsNamed(msg: string): string {
  const m = /^Missing required arguments?: (.+)$/.exec(msg);
  return m
    ? `missing required option(s): ${m[1]!
        .split(', ')
        .map((k) => `--${k}`)
        .join(', ')}`
    : msg;
}

/** yargs' usage instance (internal: undefined, and its callers do without, should that change), as `T`. */
export function usageInstance<T>(parser: unknown): Partial<T> | undefined {
  return (parser as { getInternalMethods?: () => { getUsageInstance?: () => unknown } })
    .getInternalMethods?.()
    .getUsageInstance?.() as Partial<T> | undefined;
}

/** The top-level command names, as the usage instance lists them for `--help` (read before parsing: a command's own parse resets it). */
export function commandNames(parser: unknown): Set<string> {
  const usage = usageInstance<{ getCommands: () => [string, ...unknown[]][] }>(parser);
  return new Set((usage?.getCommands?.() ?? []).map(([cmd]) => cmd.split(' ')[0]!));
}

/**
 * Refuses words after `--`: yargs sets them aside and no command reads them, so `ckvc branch -d -- old` would list
 * branches and delete nothing. No ckvc name starts with '-' (ref names may not), and a path can be written ./-x.
 * `after` is what yargs set aside (its `--` key); without it (a command line yargs refused before parsing it),
 * the words after a `--` that is not an option's value (`-m --`).
 */
export function refuseDoubleDash(argv: string[], after?: unknown): void {
  if (after === undefined) {
    const at = argv.indexOf('--');
    if (at < 0 || (at > 0 && argv[at - 1]!.startsWith('-') && !argv[at - 1]!.includes('='))) return;
    after = argv.slice(at + 1);
  }
  if (!Array.isArray(after) || after.length === 0) return;
  throw new CkvcError(
    'CKVC_USAGE',
    `ckvc takes no '--': ${after.map((w) => `'${String(w)}'`).join(' ')} after it would be ignored; give names and paths as arguments (a path that starts with '-' as ./-name)`,
    { after },
  );
}
