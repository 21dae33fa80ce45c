// Reading a config file the user names (commit --config, checkout --config, config diff): checked, parsed and
// hashed in canonical form, with its exact bytes kept.
import * as fs from 'node:fs/promises';
import { parseConfig, type ParsedConfig } from '../core/config-snapshot.js';
import { CkvcError, isCkvcError } from '../core/errors.js';

export async function readConfigFile(p: string): Promise<{ bytes: Buffer; value: ParsedConfig }> {
  let bytes: Buffer;
  try {
    const st = await fs.stat(p);
    if (!st.isFile()) throw new CkvcError('CKVC_BAD_CONFIG', `config ${p} is not a file`, { path: p });
    if (st.size > 64 * 1024 * 1024)
      throw new CkvcError('CKVC_BAD_CONFIG', `config ${p} is over 64 MiB; a config is settings, not data`, { path: p });
    bytes = await fs.readFile(p);
  } catch (e) {
    if (isCkvcError(e)) throw e;
    throw new CkvcError(
      'CKVC_INPUT_NOT_FOUND',
      `config ${p} cannot be read (${(e as NodeJS.ErrnoException).code}); check the path`,
      { path: p },
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new CkvcError('CKVC_BAD_CONFIG', `config ${p} is not UTF-8 text`, { path: p });
  }
  return { bytes, value: await parseConfig(text, p) };
}
