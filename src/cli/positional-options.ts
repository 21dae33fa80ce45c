// A positional argument is also an option key to yargs, so `ckvc show a --rev b` sets `rev` twice and yargs keeps
// the positional, dropping the flag's value without a word. One check for every command, before any handler
// runs: a value given both ways is refused, like an option given twice (src/cli/repeated-options.ts).
import { CkvcError } from '../core/errors.js';
import { flag } from './repeated-options.js';

/** The yargs calls this check needs, which @types/yargs leaves out: the running command's groups (its
 * positionals are in the "Positionals:" group, the name under the English locale main.ts fixes) and aliases. */
interface DeclaredParser {
  getGroups(): Record<string, string[]>;
  getOptions(): { alias: Record<string, string[]>; array: string[] };
}

const POSITIONALS_GROUP = 'Positionals:';

/** The values given on the command line as `--name V`, `--name=V` or `-n V` for any of `spellings`; a variadic
 * name takes every value up to the next option, as yargs's parser does. */
function flagValues(rawArgs: string[], spellings: string[], variadic: boolean): string[] {
  const out: string[] = [];
  const flags = spellings.map(flag);
  for (let i = 0; i < rawArgs.length && rawArgs[i] !== '--'; i++) {
    const token = rawArgs[i]!;
    const f = flags.find((f) => token === f || token.startsWith(`${f}=`));
    if (!f) continue;
    if (token !== f) out.push(token.slice(f.length + 1));
    else
      for (let j = i + 1; j < rawArgs.length && !rawArgs[j]!.startsWith('-') && (variadic || j === i + 1); j++)
        out.push(rawArgs[j]!);
  }
  return out;
}

/**
 * yargs middleware, run before validation: refuses a positional argument that was also given as an option.
 */
export function refusePositionalGivenAsOption(rawArgs: string[], argv: Record<string, unknown>, parser: object) {
  const declared = parser as DeclaredParser;
  const positionals = declared.getGroups()[POSITIONALS_GROUP] ?? [];
  const { alias, array } = declared.getOptions();
  for (const name of positionals) {
    const spellings = [name, ...(alias[name] ?? [])];
    const asFlag = flagValues(rawArgs, spellings, array.includes(name));
    if (asFlag.length === 0) continue;
    // yargs keeps the positional's value(s) when both are given: what it kept and the flags did not give is the
    // positional's. The same value both ways loses nothing and passes.
    const positional = ([] as unknown[]).concat(argv[name] ?? []).map(String);
    if (positional.length === asFlag.length && positional.every((v, i) => v === asFlag[i])) continue;
    const quoted = (vs: string[]) => vs.map((v) => JSON.stringify(v)).join(', ');
    const message = positional.length
      ? `<${name}> given both as an argument (${quoted(positional)}) and as ${flag(name)} (${quoted(asFlag)}); ` +
        'give it once, as the argument'
      : `${flag(name)} (${quoted(asFlag)}) would be dropped: <${name}> is read from the arguments; give it there`;
    throw new CkvcError('CKVC_USAGE', message, { option: name, values: [...positional, ...asFlag] });
  }
}
