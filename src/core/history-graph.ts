// Lays out the ASCII graph for `ckvc log --graph` in the style of `git log --graph`, so people read it
// without learning a new notation. Pure: the caller fetches the commits, sorts them (children before
// parents) and prints; this only decides which characters go in front of each line.
//
// Model: a row of "lanes", each waiting for one commit ID. A commit takes the lane an earlier child
// reserved for it, hands that lane to its first parent (the branch's own history) and opens lanes to the
// right for further parents (merges and warm starts). Lanes waiting for the same commit are merged at
// once, keeping the leftmost, as git does; lanes whose commit is not in the list end. The moves between
// one row of lanes and the next are drawn as connector lines, each lane shifting at most one column
// per line, so every edge stays a continuous stroke of `|`, `/` and `\`.

export interface GraphNode {
  id: string;
  parents: string[];
}

export interface GraphRow {
  /** Lane prefix for the commit's own line, e.g. "* ", "| * ", "*   ". Padded to the row block's width. */
  node: string;
  /** Connector lines to print after the commit's line (and after any detail lines), e.g. "|\", "| |/", "|/". Trailing spaces trimmed. */
  after: string[];
  /** Prefix for extra detail lines of this commit, e.g. "| ", "| | ", "  " under a root. Same width as `node`. */
  continuation: string;
}

/** One edge being drawn through a row's connector lines: where it is now and which column it ends in. */
interface Track {
  pos: number;
  target: number;
}

export function drawGraph(nodes: GraphNode[]): GraphRow[] {
  // Parents outside the list (history cut by -n) and parents already printed (a caller's sorting slip,
  // or a self-reference) would hold a lane open forever, so both end their lane instead.
  const rowOf = new Map<string, number>();
  nodes.forEach((n, i) => {
    if (!rowOf.has(n.id)) rowOf.set(n.id, i);
  });

  const rows: GraphRow[] = [];
  let lanes: string[] = [];
  for (let row = 0; row < nodes.length; row++) {
    const commit = nodes[row]!;
    let col = lanes.indexOf(commit.id);
    if (col === -1) {
      col = lanes.length;
      lanes.push(commit.id);
    }
    const parents = [...new Set(commit.parents)].filter((p) => (rowOf.get(p) ?? -1) > row);

    // `merged` is the lane row with the commit replaced by its parents; deduplicating it (first
    // occurrence wins) gives the next row and, for each entry, the column it has to reach.
    const merged = [...lanes.slice(0, col), ...parents, ...lanes.slice(col + 1)];
    const next: string[] = [];
    const columnOf = new Map<string, number>();
    const targets = merged.map((id) => {
      let t = columnOf.get(id);
      if (t === undefined) {
        t = next.length;
        columnOf.set(id, t);
        next.push(id);
      }
      return t;
    });

    const width = 2 * Math.max(lanes.length, next.length);
    const nodeLine = blank(width);
    lanes.forEach((_, i) => {
      nodeLine[2 * i] = i === col ? '*' : '|';
    });

    // Parents that are not already some lane to the left get fresh columns col, col+1, ... in order.
    const fresh = parents.filter((_, j) => targets[col + j]! >= col).length;
    // Three or more new lanes out of the rightmost lane: git's "*-." bar carries them sideways on the
    // commit line itself, so they leave in one connector line instead of a staircase.
    const octopus = fresh >= 3 && col === lanes.length - 1;
    if (octopus) {
      const bar = `${'-'.repeat(2 * (fresh - 2) - 1)}.`;
      for (let k = 0; k < bar.length; k++) nodeLine[2 * col + 1 + k] = bar[k]!;
    }

    const tracks: Track[] = [];
    for (let i = 0; i < lanes.length; i++) {
      if (i < col) tracks.push({ pos: i, target: targets[i]! });
      else if (i > col) tracks.push({ pos: i, target: targets[i - 1 + parents.length]! });
    }
    parents.forEach((_, j) => {
      const target = targets[col + j]!;
      const rank = target - col;
      tracks.push({ pos: octopus && rank >= 1 ? col + rank - 1 : col, target });
    });

    const continuation = blank(width);
    for (const t of tracks) continuation[2 * t.pos] = '|';

    rows.push({ node: nodeLine.join(''), after: connectors(tracks, width), continuation: continuation.join('') });
    lanes = next;
  }
  return rows;
}

function blank(width: number): string[] {
  return new Array<string>(width).fill(' ');
}

/** Moves every track one column per line towards its target until all have arrived. Mutates `tracks`. */
function connectors(tracks: Track[], width: number): string[] {
  const lines: string[] = [];
  for (;;) {
    if (tracks.every((t) => t.pos === t.target)) return lines;
    // Several parents leaving the same column would share one `\`; letting the one bound farthest go
    // first makes them fan out as a staircase, and none ever has to overtake another.
    const farthest = new Map<number, number>();
    for (const t of tracks) {
      if (t.target > t.pos && t.target > (farthest.get(t.pos) ?? -1)) farthest.set(t.pos, t.target);
    }
    const line = blank(width);
    for (const t of tracks) {
      if (t.target < t.pos) {
        put(line, 2 * t.pos - 1, '/');
        t.pos--;
      } else if (t.target > t.pos && farthest.get(t.pos) === t.target) {
        put(line, 2 * t.pos + 1, '\\');
        t.pos++;
      } else {
        put(line, 2 * t.pos, '|');
      }
    }
    lines.push(line.join('').trimEnd());
  }
}

// `|` only ever lands on even characters and slashes on odd ones, so the only clash is a `/` and a `\`
// crossing in the same cell (a lane converging leftwards past one fanning out); draw that as a crossing.
function put(line: string[], at: number, ch: string): void {
  const here = line[at];
  line[at] = here === ' ' || here === ch ? ch : 'X';
}
