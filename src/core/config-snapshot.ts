// Training configs: parsed from YAML or JSON and hashed in canonical form (spec/FORMAT.md §5.5.1), so the same
// settings hash the same however the file is formatted or its keys ordered; the raw bytes are kept as well.
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { encodeCanonical, type CborValue } from './store-format/canonical-cbor.js';
import { commonJsExports } from './commonjs-exports.js';
import { CkvcError } from './errors.js';

export type ConfigFormat = 'yaml' | 'json';

function toCbor(v: unknown, where: string): CborValue {
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') return v;
  if (Array.isArray(v)) return v.map((x, i) => toCbor(x, `${where}[${i}]`));
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, CborValue> = {};
    for (const [k, x] of Object.entries(v)) {
      const at = where ? `${where}.${k}` : k;
      // Assigned, __proto__ would be the prototype's setter: the key left out of the hash (two configs that
      // differ then hash alike) or, holding an object, an encoder crash. Canonical maps never hold it (FORMAT §3).
      if (k === '__proto__')
        throw new CkvcError(
          'CKVC_BAD_CONFIG',
          `config key ${at} is named "__proto__", which a config snapshot cannot hold (spec/FORMAT.md §3); rename it`,
          { key: at },
        );
      out[k] = toCbor(x, at);
    }
    return out;
  }
  throw new CkvcError(
    'CKVC_BAD_CONFIG',
    `config value at ${where || 'the top level'} is not plain data (${Object.prototype.toString.call(v)})`,
    { key: where },
  );
}

export interface ParsedConfig {
  value: CborValue;
  format: ConfigFormat;
}

/**
 * Parses config text; `.json` files as JSON, everything else as YAML (which also reads JSON). The YAML parser
 * (a quarter of the CLI's code) is loaded only when a YAML config is read: most commands never read one.
 */
export async function parseConfig(text: string, name: string): Promise<ParsedConfig> {
  const format: ConfigFormat = name.toLowerCase().endsWith('.json') ? 'json' : 'yaml';
  const yaml = format === 'yaml' ? commonJsExports(await import('yaml')) : undefined;
  let parsed: unknown;
  try {
    parsed = yaml ? yaml.parse(text, { uniqueKeys: true, maxAliasCount: 1000 }) : JSON.parse(text);
  } catch (e) {
    const at =
      yaml && e instanceof yaml.YAMLParseError && e.linePos
        ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}`
        : '';
    const msg = (e as Error).message.split('\n')[0];
    throw new CkvcError('CKVC_BAD_CONFIG', `config ${name} does not parse as ${format.toUpperCase()}${at}: ${msg}`, {
      path: name,
      format,
    });
  }
  return { value: toCbor(parsed ?? null, ''), format };
}

const CONFIG_PREFIX = Buffer.from('ckvc1:config\0', 'latin1');

export function configHash(value: CborValue): string {
  const h = new Blake3Hasher();
  h.update(CONFIG_PREFIX);
  h.update(Buffer.from(encodeCanonical(value)));
  return h.digestBuffer().toString('hex');
}
