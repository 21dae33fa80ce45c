// `ckvc watch`: where a checkpoint's metrics come from. In order of precedence: its sidecar
// (`<name>.metrics.json` beside it, or `metrics.json` inside a folder checkpoint), then the shared
// --metrics-file (a JSON object, or the matching line of a JSONL log), then the step in its name. A metrics file
// that cannot be read or parsed is a warning, never a reason to leave a checkpoint uncommitted.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { isCkvcError } from '../../core/errors.js';
import { FOLDER_METRICS_NAME, SIDECAR_SUFFIX, stepFromName } from './candidate-names.js';
import { parseMetricsJson, pickJsonlLine, type LoggedMetrics } from './metrics-parse.js';
import type { Candidate } from './folder-scan.js';

export interface CheckpointMetrics {
  metrics: Record<string, number>;
  step?: number;
  epoch?: number;
  /** The files the metrics were read from. */
  sources: string[];
  warnings: string[];
}

export interface MetricsOptions {
  /** Shared metrics file: `.jsonl`/`.ndjson` is a log (one object per line), anything else one JSON object. */
  metricsFile?: string;
  /** Take the step from the checkpoint's name when no metrics file gives one. */
  stepFromName: boolean;
}

/** A JSON object of metrics is small; a bigger file is a mistake (or a log that should be named .jsonl). */
const MAX_JSON_BYTES = 16 * 1024 * 1024;
/** How much of a JSONL log's end is searched: the first window is enough unless lines are huge or many steps ahead. */
const JSONL_WINDOWS = [1024 * 1024, 16 * 1024 * 1024];

export function isJsonl(file: string): boolean {
  return /\.(jsonl|ndjson)$/i.test(file);
}

/** The sidecar files a checkpoint's metrics may come from, first match wins. */
export function sidecarPaths(c: Pick<Candidate, 'path' | 'kind'>): string[] {
  const beside = `${c.path}${SIDECAR_SUFFIX}`;
  return c.kind === 'folder' ? [beside, path.join(c.path, FOLDER_METRICS_NAME)] : [beside];
}

/** Size and mtime of the sidecar beside a checkpoint, so that a sidecar still being written delays the commit. */
export async function sidecarState(c: Pick<Candidate, 'path'>): Promise<string | undefined> {
  const st = await fs.stat(`${c.path}${SIDECAR_SUFFIX}`, { bigint: true }).catch(() => undefined);
  return st ? `${st.size}:${st.mtimeNs}` : undefined;
}

export async function readCheckpointMetrics(c: Candidate, opts: MetricsOptions): Promise<CheckpointMetrics> {
  const out: CheckpointMetrics = { metrics: {}, sources: [], warnings: [] };
  const nameStep = opts.stepFromName ? stepFromName(c.name) : undefined;

  let side: LoggedMetrics | undefined;
  for (const p of sidecarPaths(c)) {
    const text = await readSmall(p, out.warnings);
    if (text === null) continue;
    if (text === undefined) break;
    try {
      side = parseMetricsJson(text, p);
      out.sources.push(p);
    } catch (e) {
      out.warnings.push(`${(e as Error).message}; ${c.name} is committed without it`);
    }
    break;
  }

  let shared: LoggedMetrics | undefined;
  if (opts.metricsFile) {
    // A log keeps growing while the checkpoint settles: match the checkpoint's step, not whatever came last.
    shared = isJsonl(opts.metricsFile)
      ? await readJsonlTail(opts.metricsFile, side?.step ?? nameStep, out.warnings)
      : await readSharedJson(opts.metricsFile, out.warnings);
    if (shared) out.sources.push(opts.metricsFile);
  }

  // The sidecar speaks for this checkpoint alone, so its fields win; the shared file fills in the rest.
  out.metrics = { ...shared?.metrics, ...side?.metrics };
  const step = side?.step ?? nameStep ?? shared?.step;
  const epoch = side?.epoch ?? shared?.epoch;
  if (step !== undefined) out.step = step;
  if (epoch !== undefined) out.epoch = epoch;
  const skipped = [...(side?.skipped ?? []), ...(shared?.skipped ?? [])];
  if (skipped.length)
    out.warnings.push(
      `metric name(s) ${skipped.map((s) => JSON.stringify(s)).join(', ')} use characters other than letters, digits and _ . / : -; left out`,
    );
  return out;
}

/** The file's text; null when it does not exist; undefined when it cannot be used (a warning says why). */
async function readSmall(p: string, warnings: string[]): Promise<string | null | undefined> {
  try {
    const st = await fs.stat(p);
    if (!st.isFile()) {
      warnings.push(`metrics file ${p} is not a file; left out`);
      return undefined;
    }
    if (st.size > MAX_JSON_BYTES) {
      warnings.push(
        `metrics file ${p} is over 16 MiB, too big for one JSON object (a log should be named .jsonl); left out`,
      );
      return undefined;
    }
    return await fs.readFile(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    warnings.push(
      `metrics file ${p} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); left out`,
    );
    return undefined;
  }
}

async function readSharedJson(p: string, warnings: string[]): Promise<LoggedMetrics | undefined> {
  const text = await readSmall(p, warnings);
  if (text === null) warnings.push(`metrics file ${p} does not exist (yet); committed without its metrics`);
  if (typeof text !== 'string') return undefined;
  try {
    return parseMetricsJson(text, p);
  } catch (e) {
    if (!isCkvcError(e)) throw e;
    warnings.push(`${e.message}; committed without its metrics`);
    return undefined;
  }
}

async function readJsonlTail(
  p: string,
  atOrBeforeStep: number | undefined,
  warnings: string[],
): Promise<LoggedMetrics | undefined> {
  let fh: fs.FileHandle;
  try {
    // Opening a named pipe would block until a writer appears, beyond the reach of stop() and abort().
    if (!(await fs.stat(p)).isFile()) {
      warnings.push(`metrics log ${p} is not a regular file; committed without its metrics`);
      return undefined;
    }
    fh = await fs.open(p, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    warnings.push(
      code === 'ENOENT'
        ? `metrics log ${p} does not exist (yet); committed without its metrics`
        : `metrics log ${p} cannot be read (${code}); committed without its metrics`,
    );
    return undefined;
  }
  try {
    const size = (await fh.stat()).size;
    for (const window of JSONL_WINDOWS) {
      const start = Math.max(0, size - window);
      const buf = Buffer.alloc(size - start);
      let done = 0;
      while (done < buf.length) {
        const { bytesRead } = await fh.read(buf, done, buf.length - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      const found = pickJsonlLine(buf.subarray(0, done).toString('utf8'), {
        fromFileStart: start === 0,
        atOrBeforeStep,
      });
      if (found) return found;
      if (start === 0) break;
    }
    warnings.push(
      `no complete line of ${p}${atOrBeforeStep === undefined ? '' : ` at or before step ${atOrBeforeStep}`} is a JSON object; committed without its metrics`,
    );
    return undefined;
  } catch (e) {
    warnings.push(
      `metrics log ${p} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); committed without its metrics`,
    );
    return undefined;
  } finally {
    await fh.close().catch(() => {});
  }
}

/** A metrics file named on its own (commit --metrics-file): a JSON object, or a JSONL log's last object line. */
export async function readMetricsSource(p: string): Promise<{ found?: LoggedMetrics; problems: string[] }> {
  const problems: string[] = [];
  const found = isJsonl(p) ? await readJsonlTail(p, undefined, problems) : await readSharedJson(p, problems);
  return { ...(found ? { found } : {}), problems };
}
