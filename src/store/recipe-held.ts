// Whether a store still holds everything a file recipe needs: the files cache's check before a commit takes an
// unread file as a recipe stored earlier (spec/FORMAT.md §19). A recipe can be present while what it needs is not:
// a prune record released its tensors' data and gc collected it, a partial fetch left chunks out, or the store at
// this path is another one. The walk is the one of object-walk.ts, so "what a recipe needs" cannot disagree with
// what gc keeps or what verify checks; chunks are located in the index, not read.
import type { ObjectId } from '../core/store-format/object-id.js';
import type { FileRecipe } from '../core/store-format/objects/file-recipe.js';
import type { ObjectStore } from './object-store.js';
import { walkObjects, type ObjectSource } from './object-walk.js';
import type { ObjectLocation } from './pack-reader.js';

/** The recipe `id` (as if at `treePath`) when the store holds it and all it needs, else undefined. */
export async function recipeHeld(store: ObjectStore, id: ObjectId, treePath: string): Promise<FileRecipe | undefined> {
  const [at] = await store.locate([id]);
  if (at?.entry.type !== 'file') return undefined;
  let recipe: FileRecipe;
  try {
    recipe = await store.readFileRecipe(id, at);
  } catch {
    return undefined; // damaged or gone: the file is read, as without the cache
  }
  // The recipe's tensors located in one lookup rather than one each as the walk reads them (505 for a 98.8 MB
  // checkpoint); what the walk reads, and so what counts as needed, is still the walk's to say.
  const tensorIds = recipe.parts.flatMap((p) => (p.kind === 'tensor' ? [p.id] : []));
  const located = new Map<ObjectId, ObjectLocation>();
  (await store.locate(tensorIds)).forEach((l, i) => {
    if (l) located.set(tensorIds[i]!, l);
  });
  const source: ObjectSource = {
    typeOf: (x) => store.typeOf(x),
    readTag: (x) => store.readTag(x),
    readCommit: (x) => store.readCommit(x),
    readTree: (x) => store.readTree(x),
    readFileRecipe: async (x) => (x === id ? recipe : store.readFileRecipe(x)),
    readTensor: (x) => store.readTensor(x, located.get(x)),
  };
  let complete = true;
  const chunks: ObjectId[] = [];
  await walkObjects(source, [], {
    files: [{ id, path: treePath }],
    visit: (r) => {
      if (r.kind === 'chunk') chunks.push(r.id);
    },
    onUnreadable: () => {
      complete = false;
    },
  });
  if (!complete) return undefined;
  return (await store.locate(chunks)).every((l) => l?.entry.type === 'chunk') ? recipe : undefined;
}
