// `ckvc watch`: turning what a training loop logs (a JSON object, or a line of a JSONL log) into a commit's
// metrics, step and epoch. Pure: the api layer reads the files and hands the text over.
import { CkvcError } from '../../core/errors.js';
import { isJsonObject } from '../../core/json-object.js';
import { parsePythonJson } from '../../core/python-json.js';

export interface LoggedMetrics {
  metrics: Record<string, number>;
  step?: number;
  epoch?: number;
  /** Numeric fields that could not become metrics (their names break the metric-name rule). */
  skipped: string[];
}

const METRIC_NAME = /^[A-Za-z0-9_./:-]{1,128}$/;
const STEP_KEYS = ['step', 'global_step'];
const MAX_DEPTH = 4;

/**
 * Numeric fields become metrics; nested objects are flattened with '/' (`{"eval": {"score": 1}}` ->
 * `eval/score`, the way W&B and TensorBoard name them). Top-level `step` (or `global_step`) and `epoch` become
 * the commit's step and epoch instead. Strings, booleans and arrays are ignored: logs carry run names and flags.
 */
export function metricsFromObject(obj: Record<string, unknown>): LoggedMetrics {
  const out: LoggedMetrics = { metrics: {}, skipped: [] };
  for (const key of STEP_KEYS) {
    const v = obj[key];
    if (out.step === undefined && typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) out.step = v;
  }
  if (typeof obj.epoch === 'number' && Number.isFinite(obj.epoch)) out.epoch = obj.epoch;
  const walk = (o: Record<string, unknown>, prefix: string, depth: number) => {
    for (const [k, v] of Object.entries(o)) {
      if (depth === 0 && (STEP_KEYS.includes(k) || k === 'epoch')) continue;
      const name = prefix + k;
      if (isJsonObject(v) && depth < MAX_DEPTH) walk(v, `${name}/`, depth + 1);
      else if (typeof v === 'number') {
        // NaN and ±Infinity too: a diverged loss is recorded as such
        // __proto__ as a key would change the object's prototype instead of adding a metric.
        if (METRIC_NAME.test(name) && name !== '__proto__') out.metrics[name] = v;
        else out.skipped.push(name);
      }
    }
  };
  walk(obj, '', 0);
  return out;
}

/** A metrics JSON file (sidecar or shared): one object. */
export function parseMetricsJson(text: string, where: string): LoggedMetrics {
  let value: unknown;
  try {
    value = parsePythonJson(text);
  } catch (e) {
    throw new CkvcError(
      'CKVC_BAD_METRIC',
      `metrics file ${where} is not valid JSON (${(e as Error).message}); write one JSON object of numbers`,
      { path: where },
    );
  }
  if (!isJsonObject(value))
    throw new CkvcError(
      'CKVC_BAD_METRIC',
      `metrics file ${where} holds ${Array.isArray(value) ? 'an array' : typeof value}, not a JSON object; write one object such as {"loss": 0.31}`,
      { path: where },
    );
  return metricsFromObject(value);
}

/**
 * The line of a JSONL log that describes a checkpoint: the last line that parses as a JSON object (a line still
 * being written does not), skipping lines logged at a later step than the checkpoint's, because training keeps
 * logging while the checkpoint settles. `text` is the file's tail; when it does not start at the file's start
 * its first line may be cut and is ignored. Returns undefined when no line qualifies.
 */
export function pickJsonlLine(
  text: string,
  opts: { fromFileStart: boolean; atOrBeforeStep?: number },
): LoggedMetrics | undefined {
  const lines = text.split('\n');
  const first = opts.fromFileStart ? 0 : 1;
  for (let i = lines.length - 1; i >= first; i--) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = parsePythonJson(line);
    } catch {
      continue;
    }
    if (!isJsonObject(value)) continue;
    const parsed = metricsFromObject(value);
    if (opts.atOrBeforeStep !== undefined && parsed.step !== undefined && parsed.step > opts.atOrBeforeStep) continue;
    return parsed;
  }
  return undefined;
}
