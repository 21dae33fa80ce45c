// `commit --metrics-file FILE[:KEY]`: a commit's metrics from what the training loop wrote (a JSON object, or
// the last line of a JSONL log), read through the same parser `ckvc watch` uses. KEY picks one top-level field:
// an object of metrics (`results.json:eval`), or a single number (`train.jsonl:loss`).
import * as fs from 'node:fs/promises';
import { CkvcError } from '../core/errors.js';
import type { LoggedMetrics } from './watch/metrics-parse.js';
import { readMetricsSource } from './watch/metrics-sources.js';

/** FILE[:KEY]: the whole text is the file when it exists (a path may hold ':'), else the last ':' splits. */
async function splitSpec(spec: string): Promise<{ file: string; key?: string }> {
  const exists = await fs.stat(spec).then(
    () => true,
    () => false,
  );
  const i = spec.lastIndexOf(':');
  if (exists || i <= 0 || i === spec.length - 1) return { file: spec };
  return { file: spec.slice(0, i), key: spec.slice(i + 1) };
}

export async function readMetricsFile(spec: string): Promise<LoggedMetrics> {
  const { file, key } = await splitSpec(spec);
  const { found, problems } = await readMetricsSource(file);
  if (!found) {
    // The readers word their problems for watch, which goes on without the metrics; a commit stops instead.
    const why = (problems[0] ?? `nothing usable in ${file}`)
      .replace(/; committed without its metrics$/, '')
      .replace(/; left out$/, '');
    throw new CkvcError('CKVC_BAD_METRIC', `--metrics-file ${spec}: ${why}; nothing was committed`, { path: file });
  }
  if (key === undefined) return found;
  const prefix = `${key}/`;
  const picked: Record<string, number> = {};
  for (const [k, v] of Object.entries(found.metrics)) {
    const name = k === key ? k : k.startsWith(prefix) ? k.slice(prefix.length) : undefined;
    if (name === '__proto__')
      throw new CkvcError(
        'CKVC_BAD_METRIC',
        `--metrics-file ${spec}: ${file} has the field ${JSON.stringify(k)}, which would be a metric named "__proto__"; nothing was committed`,
        { path: file, key },
      );
    if (name !== undefined) picked[name] = v;
  }
  if (Object.keys(picked).length === 0) {
    const have = Object.keys(found.metrics).slice(0, 8).join(', ') || 'none';
    const what = `--metrics-file ${spec}: ${file} has no numeric field '${key}' (metrics there: ${have})`;
    throw new CkvcError('CKVC_BAD_METRIC', `${what}; nothing was committed`, { path: file, key });
  }
  return { ...found, metrics: picked };
}
