// An option that takes one value, given twice (`ckvc commit -b x -b y`), reaches the handler from yargs as an
// array its command never expects. One check for every command and every option, before any handler runs.
import { CkvcError } from '../core/errors.js';

/** What yargs knows of the options in force for the command being run (its getOptions(), which @types/yargs
 * leaves out): every name and alias in `key`, the repeatable ones in `array`. */
interface DeclaredOptions {
  key: Record<string, unknown>;
  array: string[];
  alias: Record<string, string[]>;
}

export const flag = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`);

/** The name an option is defined under, given any of its spellings (`b` -> `branch`). */
function definedName(key: string, alias: DeclaredOptions['alias']): string {
  return Object.keys(alias).find((k) => k === key || alias[k]!.includes(key)) ?? key;
}

/** `--branch (-b)`: the option as its command defines it, with its other spellings. */
function spellings(name: string, alias: DeclaredOptions['alias']): string {
  const others = (alias[name] ?? []).filter((a) => a !== name);
  return `${flag(name)}${others.length ? ` (${others.map(flag).join(', ')})` : ''}`;
}

/**
 * yargs middleware, run before validation: refuses the command line if an option not declared repeatable holds
 * more than one value. `parser` is the yargs instance, which holds the running command's options.
 */
export function refuseRepeatedOptions(argv: Record<string, unknown>, parser: object): void {
  const { key, array, alias } = (parser as { getOptions(): DeclaredOptions }).getOptions();
  const repeatable = new Set(array);
  for (const spelling of Object.keys(key)) {
    const value = argv[spelling];
    const name = definedName(spelling, alias);
    if (!Array.isArray(value) || repeatable.has(spelling) || repeatable.has(name)) continue;
    const given = value.map((v) => JSON.stringify(String(v))).join(', ');
    const times = value.length === 2 ? 'twice' : `${value.length} times`;
    const message = `${spellings(name, alias)} given ${times} (${given}); it takes one value: give it once`;
    throw new CkvcError('CKVC_USAGE', message, { option: name, values: value.map(String) });
  }
}
