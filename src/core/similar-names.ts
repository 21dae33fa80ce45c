// "Did you mean": names close to one the user typed (a branch `rn1` for `run1`), for messages only.

/** Edits (insert, delete, substitute, swap two neighbours) between a and b, or more than `cap` once it is past it. */
function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) > cap) return cap + 1;
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur.push(d);
      best = Math.min(best, d);
    }
    if (best > cap) return cap + 1;
    prev2 = prev;
    prev = cur;
  }
  return prev[b.length]!;
}

/** Up to `max` of `candidates` within one edit (two for names of 5 characters or more) of `name`, closest first. */
export function similarNames(name: string, candidates: Iterable<string>, max = 3): string[] {
  const cap = name.length >= 5 ? 2 : 1;
  const scored: [string, number][] = [];
  for (const c of new Set(candidates)) {
    if (c === name) continue;
    const d = editDistance(name.toLowerCase(), c.toLowerCase(), cap);
    if (d <= cap) scored.push([c, d]);
  }
  return scored
    .sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1))
    .slice(0, max)
    .map(([c]) => c);
}

/** " (did you mean 'a' or 'b'?)", or "" when nothing is close. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const close = similarNames(name, candidates);
  if (close.length === 0) return '';
  const quoted = close.map((c) => `'${c}'`);
  const list = quoted.length === 1 ? quoted[0] : `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`;
  return ` (did you mean ${list}?)`;
}
