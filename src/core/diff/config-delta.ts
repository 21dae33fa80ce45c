// What changed between two training configs, as a flat list of key paths. Configs are plain parsed YAML/JSON
// trees (objects, arrays, strings, numbers, booleans, null), so a structural walk is enough: there are no
// cycles, class instances or undefined values to worry about.

export interface ConfigChange {
  path: string;
  kind: 'added' | 'removed' | 'changed';
  old?: unknown;
  new?: unknown;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/**
 * `optimizer.lr`, `layers[2].units`; keys that are not identifiers are quoted as JSON strings (`["a.b"]`,
 * `["0"]`) so a path names exactly one place and an object key never reads as an array index.
 */
export function formatKeyPath(segments: (string | number)[]): string {
  let out = '';
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (IDENTIFIER.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

type Shape = 'array' | 'object' | 'leaf';

function shapeOf(v: unknown): Shape {
  if (Array.isArray(v)) return 'array';
  return v !== null && typeof v === 'object' ? 'object' : 'leaf';
}

// `===` already treats 0 and -0 as equal, which is what a config reader means; only NaN needs help.
function sameLeaf(x: unknown, y: unknown): boolean {
  return x === y || (typeof x === 'number' && typeof y === 'number' && Number.isNaN(x) && Number.isNaN(y));
}

function walk(a: unknown, b: unknown, path: (string | number)[], out: ConfigChange[]): void {
  if (a === b) return;
  const shape = shapeOf(a);
  if (shape !== shapeOf(b)) {
    out.push({ path: formatKeyPath(path), kind: 'changed', old: a, new: b });
    return;
  }
  if (shape === 'leaf') {
    if (!sameLeaf(a, b)) out.push({ path: formatKeyPath(path), kind: 'changed', old: a, new: b });
    return;
  }
  if (shape === 'array') {
    const xs = a as unknown[];
    const ys = b as unknown[];
    const common = Math.min(xs.length, ys.length);
    for (let i = 0; i < common; i++) walk(xs[i], ys[i], [...path, i], out);
    for (let i = common; i < xs.length; i++)
      out.push({ path: formatKeyPath([...path, i]), kind: 'removed', old: xs[i] });
    for (let i = common; i < ys.length; i++) out.push({ path: formatKeyPath([...path, i]), kind: 'added', new: ys[i] });
    return;
  }
  // Own keys only, read through the own-property check: a key named `__proto__` is then just a key.
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  for (const k of Object.keys(x)) {
    if (Object.hasOwn(y, k)) walk(x[k], y[k], [...path, k], out);
    else out.push({ path: formatKeyPath([...path, k]), kind: 'removed', old: x[k] });
  }
  for (const k of Object.keys(y)) {
    if (!Object.hasOwn(x, k)) out.push({ path: formatKeyPath([...path, k]), kind: 'added', new: y[k] });
  }
}

/** Changes from config a to config b, sorted by path in code-unit order (so `layers[10]` sorts before `layers[2]`). */
export function diffConfig(a: unknown, b: unknown): ConfigChange[] {
  const out: ConfigChange[] = [];
  walk(a, b, [], out);
  // Paths are unique, so the order is total and does not depend on sort stability.
  return out.sort((p, q) => (p.path < q.path ? -1 : p.path > q.path ? 1 : 0));
}
