// `ckvc checkout --tensor GLOB`: new safetensors files holding only the selected tensors (spec/SAFETENSORS.md,
// "Writing a subset"). Everything that could refuse is checked for every file before the first byte is written.
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import { parseSafetensorsHeader, readSafetensorsHeaderLength } from '../core/input-formats/safetensors.js';
import {
  buildSafetensorsHead,
  safetensorsUnwritable,
  type SafetensorsHead,
} from '../core/input-formats/safetensors-writer.js';
import { selectedNames, type TensorSelection as Selector } from '../core/glob.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { type FileRecipe, type TensorPart, tensorPartNames } from '../core/store-format/objects/file-recipe.js';
import type { TensorObject } from '../core/store-format/objects/tensor-object.js';
import { planTensorFiles, type TensorFileSpec } from '../store/checkout-plan.js';
import { writeTensorFile } from '../store/checkout-write.js';
import { WrittenChunks } from '../store/written-chunks.js';
import { removeStaleTemps } from '../store/checkout-target.js';
import type { ObjectStore } from '../store/object-store.js';
import { tensorReleased, type TreeFile } from '../store/object-walk.js';
import { readRecipeHead } from '../store/recipe-stream.js';
import type { CheckoutOptions, CheckoutResult } from './checkout-options.js';
import { namePartialCheckout } from './checkout-partial.js';
import { prunedWording } from './checkout-pruned.js';
import { fetchLeftOut } from './fetch-on-demand.js';

/** model.pt -> model.safetensors, sub/opt.npz -> sub/opt.safetensors; a leading dot is not an extension. */
export function subsetPath(file: string): string {
  const slash = file.lastIndexOf('/');
  const dot = file.lastIndexOf('.');
  return `${dot > slash + 1 ? file.slice(0, dot) : file}.safetensors`;
}

/** A tensor part and the names it is written under: those of its names the selection takes (tied weights). */
interface ChosenPart {
  part: TensorPart;
  names: string[];
}

interface Chosen {
  file: TreeFile;
  recipe: FileRecipe;
  parts: ChosenPart[];
}

interface Loaded {
  chosen: Chosen;
  tensors: { name: string; tensor: TensorObject }[];
}

/** One output file of a --tensor checkout and the commit's file its tensors come from. */
interface SubsetFile {
  spec: TensorFileSpec;
  source: string;
}

/** How a refusal names the commit and what was asked for. */
interface Asked {
  id: ObjectId;
  short: string;
  opts: CheckoutOptions;
}

/** The files holding a selected tensor, with those tensors; none at all is an error. */
async function chooseTensors(store: ObjectStore, files: TreeFile[], sel: Selector, asked: Asked): Promise<Chosen[]> {
  const chosen: Chosen[] = [];
  for (const file of files) {
    const recipe = await store.readFileRecipe(file.id);
    const parts: ChosenPart[] = [];
    for (const part of recipe.parts) {
      if (part.kind !== 'tensor') continue;
      const names = selectedNames(sel, file.path, tensorPartNames(part));
      if (names.length) parts.push({ part, names });
    }
    if (parts.length) chosen.push({ file, recipe, parts });
  }
  if (chosen.length === 0) {
    const { id, short, opts } = asked;
    const globs = opts.tensors ?? [];
    const where = opts.paths?.length ? ` under --path ${opts.paths.join(', ')}` : '';
    const given = globs.map((g) => `--tensor '${g}'`).join(' ');
    const message =
      `no tensor of commit ${short}${where} matches ${given}; ` +
      `'ckvc ls ${short} --tensors' lists the tensors and their names`;
    throw new CkvcError('CKVC_PATH_NOT_FOUND', message, { commit: id, tensors: globs, paths: opts.paths ?? [] });
  }
  return chosen;
}

/** Refuses a selection holding a tensor whose data `ckvc prune` released. */
async function refusePrunedTensors(store: ObjectStore, chosen: Chosen[], { id, short }: Asked): Promise<void> {
  const rec = await store.pruned.get(id);
  if (!rec) return;
  for (const { file, parts } of chosen) {
    const released = parts.filter((p) => tensorReleased(rec, file.path, p.part)).flatMap((p) => p.names);
    if (released.length === 0) continue;
    const { when, which } = prunedWording(rec);
    const message =
      `${released.length} selected tensor(s) of ${file.path} in commit ${short} cannot be checked out, ` +
      `e.g. '${released[0]}': 'ckvc prune' released ${which} of this commit on ${when}; ` +
      `leave them out (e.g. --tensor '!${released[0]}') or check out another commit`;
    throw new CkvcError('CKVC_PRUNED', message, { commit: id, path: file.path, prunedAt: rec.time, tensors: released });
  }
}

/** Reads the chosen tensors' objects; refuses any a safetensors file cannot hold, all of them named at once. */
async function loadTensors(store: ObjectStore, chosen: Chosen[], { id, short }: Asked): Promise<Loaded[]> {
  const loaded: Loaded[] = [];
  const unwritable: string[] = [];
  const unwritableData: { path: string; tensor: string; dtype: string }[] = [];
  for (const ch of chosen) {
    const tensors: { name: string; tensor: TensorObject }[] = [];
    for (const { part: p, names } of ch.parts) {
      const t = await store.readTensor(p.id);
      // A part rendered as JSON text (spec/JSON.md) lists its text's length; its tensor is checked at rendering.
      if (!p.json && t.size !== p.size) {
        throw new CkvcError(
          'CKVC_CORRUPT_OBJECT',
          `tensor ${p.name} of ${ch.file.path} is ${t.size} bytes but its file lists ${p.size}; run 'ckvc verify'`,
          { id: p.id, path: ch.file.path },
        );
      }
      // Tied names each get their own copy: a safetensors file cannot share bytes between two entries.
      for (const name of names) {
        const why = safetensorsUnwritable({ name, dtype: t.dtype, shape: t.shape, size: t.size, order: t.order });
        if (why !== undefined) {
          unwritable.push(`tensor '${name}' of ${ch.file.path} cannot go into a safetensors file: ${why}`);
          unwritableData.push({ path: ch.file.path, tensor: name, dtype: t.dtype });
        }
        tensors.push({ name, tensor: t });
      }
    }
    loaded.push({ chosen: ch, tensors });
  }
  if (unwritable.length) {
    const more = unwritable.length > 1 ? ` (and ${unwritable.length - 1} more)` : '';
    const first = unwritableData[0]!;
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `${unwritable[0]}${more}; nothing was written: narrow --tensor to leave it out, e.g. add --tensor '!${first.tensor}' ('ckvc ls ${short} ${first.path} --tensors' shows every dtype)`,
      { commit: id, unwritable: unwritableData },
    );
  }
  return loaded;
}

/** Refuses two source files whose subsets would land on the same output path. */
function refuseOutputClash(loaded: Loaded[], { id }: Asked): void {
  const byOutput = new Map<string, string>();
  for (const { chosen: ch } of loaded) {
    const out = subsetPath(ch.file.path);
    const other = byOutput.get(out);
    if (other !== undefined) {
      throw new CkvcError(
        'CKVC_BAD_ARGUMENT',
        `both ${other} and ${ch.file.path} have matching tensors and would be written as ${out}; check them out one at a time with --path`,
        { commit: id, path: out, sources: [other, ch.file.path] },
      );
    }
    byOutput.set(out, ch.file.path);
  }
}

/** Lays out each output file: header (the source's metadata carried over) and tensor order. */
async function buildTensorFiles(store: ObjectStore, loaded: Loaded[], { id, short }: Asked): Promise<SubsetFile[]> {
  const specs: SubsetFile[] = [];
  for (const { chosen: ch, tensors } of loaded) {
    // transformers' from_pretrained refuses a file whose metadata lacks "format" (metadata without it is
    // worse than none); "pt" is what its save_pretrained writes for PyTorch weights.
    const metadata: Record<string, string> = {
      ...(await sourceMetadata(store, ch.recipe, ch.file.path)),
      'ckvc.commit': id,
      'ckvc.source': ch.file.path,
    };
    metadata.format ??= 'pt';
    const entries = tensors.map((x) => ({
      name: x.name,
      dtype: x.tensor.dtype,
      shape: x.tensor.shape,
      size: x.tensor.size,
      order: x.tensor.order,
      tensor: x.tensor,
    }));
    let built: SafetensorsHead<(typeof entries)[number]>;
    try {
      built = buildSafetensorsHead(entries, metadata);
    } catch (e) {
      // What is left to refuse here (duplicate names, an oversized header) is about this file: say which.
      if (e instanceof CkvcError && e.code === 'CKVC_BAD_ARGUMENT')
        throw new CkvcError(e.code, `${ch.file.path} of ${short}: ${e.message}; nothing was written`, {
          ...e.data,
          commit: id,
          path: ch.file.path,
        });
      throw e;
    }
    const { head, order, fileSize } = built;
    specs.push({
      spec: {
        path: subsetPath(ch.file.path),
        head,
        tensors: order.map((x) => ({ name: x.name, tensor: x.tensor })),
        size: fileSize,
      },
      source: ch.file.path,
    });
  }
  return specs;
}

/** Writes the files that differ from what DIR holds (refusing, without --force, to replace a different one). */
async function writeTensorFiles(
  store: ObjectStore,
  specs: SubsetFile[],
  { id, short, opts }: Asked,
): Promise<CheckoutResult> {
  const to = path.resolve(opts.to);
  const plan = await planTensorFiles(
    specs.map((s) => s.spec),
    to,
    Boolean(opts.force),
  );
  const temps = await removeStaleTemps(
    plan.write.map((w) => w.target),
    specs.map((s) => s.spec.path),
  );
  const sourceOf = new Map(specs.map((s) => [s.spec, s.source]));
  const written: CheckoutResult['written'] = [];
  const chunks = new WrittenChunks();
  try {
    for (const w of plan.write) {
      const source = sourceOf.get(w.spec)!;
      await writeTensorFile(store, w.spec, w.target, `${short}:${source} (--tensor)`, chunks);
      written.push({
        path: w.spec.path,
        bytes: w.spec.size,
        source,
        tensors: w.spec.tensors.length,
        ...(w.replaced ? { replaced: true } : {}),
      });
      opts.progress?.({ path: w.spec.path, bytes: w.spec.size });
    }
  } catch (e) {
    throw namePartialCheckout(e, written, plan.write.length);
  } finally {
    await chunks.close();
  }
  const writtenSet = new Set(plan.write.map((w) => w.spec));
  return {
    commit: id,
    to,
    written,
    unchanged: plan.unchanged.map((s) => s.path),
    bytes: written.reduce((a, w) => a + w.bytes, 0),
    tensorFiles: specs.map(({ spec, source }) => ({
      path: spec.path,
      source,
      bytes: spec.size,
      tensors: spec.tensors.map((t) => t.name),
      written: writtenSet.has(spec),
    })),
    ...(temps.removed.length ? { removedTemps: temps.removed } : {}),
    ...(temps.recent.length ? { recentTemps: temps.recent } : {}),
  };
}

export async function checkoutTensors(
  store: ObjectStore,
  id: ObjectId,
  files: TreeFile[],
  sel: Selector,
  opts: CheckoutOptions,
): Promise<CheckoutResult> {
  const asked: Asked = { id, short: id.slice(0, 12), opts };
  const chosen = await chooseTensors(store, files, sel, asked);
  // Everything that could refuse is checked for every file before the first byte is written.
  await refusePrunedTensors(store, chosen, asked);
  const paths = new Set(chosen.map((c) => c.file.path));
  await fetchLeftOut(
    store,
    id,
    (p, names) => paths.has(p) && selectedNames(sel, p, names).length > 0,
    'checkout --tensor',
  );
  const loaded = await loadTensors(store, chosen, asked);
  refuseOutputClash(loaded, asked);
  const specs = await buildTensorFiles(store, loaded, asked);
  return writeTensorFiles(store, specs, asked);
}

/**
 * The `__metadata__` of a committed safetensors file (carried into the subset: it names the framework and
 * whatever its writer recorded), read from the header chunks the recipe keeps verbatim. Other formats have none.
 */
async function sourceMetadata(
  store: ObjectStore,
  recipe: FileRecipe,
  filePath: string,
): Promise<Record<string, string>> {
  if (recipe.format !== 'safetensors') return {};
  const head = await readRecipeHead(store, recipe, filePath);
  const n = readSafetensorsHeaderLength(head.subarray(0, 8), recipe.size, filePath);
  return parseSafetensorsHeader(head.subarray(8, 8 + n), recipe.size, filePath).metadata ?? {};
}
