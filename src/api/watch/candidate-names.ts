// `ckvc watch`: which names in a watched folder can be checkpoints, and what a checkpoint's name says about its
// step. Pure: the api layer lists the folder and asks; nothing here touches the disk.
import { compileGlob, type Glob } from '../../core/glob.js';

/**
 * Names a writer uses before the final rename (torch/HF/Lightning temp files, download managers, editors):
 * never a finished checkpoint, whatever --pattern says. HF Trainer stages folders as `tmp-checkpoint-N`.
 */
const TEMP_NAMES = [
  /~$/,
  /^tmp[-_.]/i,
  /\.(tmp|temp|part|partial|crdownload|incomplete|lock|swp)$/i,
  /\.tmp[-_.0-9a-z]*$/i,
];

/**
 * What training jobs write beside their checkpoints: logs, metrics, configs, scripts, and the log folders of
 * TensorBoard, Lightning, W&B and MLflow. They change while training runs and would be committed whenever they
 * pause, so the default rule leaves them out; an explicit --pattern may still name them.
 */
const NOT_CHECKPOINTS = [
  /\.(log|txt|out|err|json|jsonl|ndjson|csv|tsv|ya?ml|toml|md|py|sh)$/i,
  /^events\.out\.tfevents\./,
  /^(runs|logs|lightning_logs|wandb|mlruns|tensorboard|latest)$/,
];

/** `<checkpoint>.metrics.json`: the per-checkpoint metrics sidecar. */
export const SIDECAR_SUFFIX = '.metrics.json';

/** Inside a folder checkpoint, this file holds its metrics when no sidecar sits beside the folder. */
export const FOLDER_METRICS_NAME = 'metrics.json';

export function isTempName(name: string): boolean {
  return TEMP_NAMES.some((re) => re.test(name));
}

export interface CandidateRules {
  /** Compiled --pattern globs; empty means the default rule (see isCandidate). */
  patterns: Glob[];
  /** Names in the folder that are metrics files of this watch (the --metrics-file when it lives there). */
  metricsNames: ReadonlySet<string>;
}

export function candidateRules(patterns: readonly string[], metricsNames: Iterable<string> = []): CandidateRules {
  return { patterns: patterns.map(compileGlob), metricsNames: new Set(metricsNames) };
}

/**
 * True when the folder entry `name` may be a checkpoint. Hidden, temp and metrics names are always left out;
 * without --pattern, logs and the like (NOT_CHECKPOINTS) and symlinks (`last -> step_1000.pt` would commit the
 * same data under a second name) are too.
 */
export function isCandidate(name: string, entry: { symlink: boolean }, rules: CandidateRules): boolean {
  if (name.startsWith('.') || isTempName(name) || name.endsWith(SIDECAR_SUFFIX) || rules.metricsNames.has(name))
    return false;
  if (rules.patterns.length === 0) return !entry.symlink && !NOT_CHECKPOINTS.some((re) => re.test(name));
  return rules.patterns.some((re) => re.test(name));
}

/** A trailing `.ext` with at least one letter (`.pt`, `.h5`, `.safetensors`, `.gz`): not part of the step. */
const EXTENSION = /\.(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{1,12}$/;
/** `step_1000`, `step=1000`, `global_step1000`, `steps-1000`; not `laststep5`. */
const STEP_WORD = /(?:^|[^A-Za-z])(?:global_?)?steps?[=_-]?(\d+)/gi;

/**
 * The training step a checkpoint's name carries: the number after a "step" word (Lightning's
 * `epoch=3-step=1000.ckpt`, DeepSpeed's `global_step1000`), else the last integer (`checkpoint-500`,
 * `model_1000.pt`). Extensions are ignored so `model.h5` is not step 5.
 */
export function stepFromName(name: string): number | undefined {
  let stem = name;
  while (EXTENSION.test(stem)) stem = stem.replace(EXTENSION, '');
  const worded = [...stem.matchAll(STEP_WORD)].pop()?.[1];
  const digits = worded ?? stem.match(/\d+/g)?.pop();
  if (digits === undefined) return undefined;
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Fills `{name}` and `{step}` in a commit message template; other braces stay as typed. */
export function watchMessage(template: string, fields: { name: string; step?: number }): string {
  return template.replace(/\{(name|step)\}/g, (_, k: string) =>
    k === 'name' ? fields.name : fields.step === undefined ? '' : String(fields.step),
  );
}

/** Orders checkpoints found together (e.g. after a restart) the way training wrote them: oldest first. */
export function trainingOrder<T extends { name: string; newestMtimeMs: number }>(a: T, b: T): number {
  return a.newestMtimeMs - b.newestMtimeMs || a.name.localeCompare(b.name, 'en', { numeric: true });
}
