// The one way a safetensors file is refused: CKVC_BAD_SAFETENSORS with a stable `rule` (spec/SAFETENSORS.md),
// the file name as `source` when known (also prefixed to the message), and the details of the broken rule.

import { CkvcError } from '../errors.js';

export function failSafetensors(
  rule: string,
  message: string,
  source: string | undefined,
  details: Record<string, unknown> = {},
): never {
  const data: Record<string, unknown> = { rule };
  if (source !== undefined) data.source = source;
  Object.assign(data, details);
  const text = source !== undefined ? `${source}: ${message}` : message;
  throw new CkvcError('CKVC_BAD_SAFETENSORS', text, data);
}
