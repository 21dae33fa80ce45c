// The expected graphs are hand-drawn the way `git log --graph --oneline` draws the same history, so a
// change in shape shows up as a readable picture diff rather than a wall of indices.
import { describe, expect, it } from 'vitest';
import { drawGraph, type GraphNode } from '../../src/core/history-graph.js';

/** "c3:a2,b1 b1:a1 a1" → nodes in that order; the part after ':' lists the parents, first parent first. */
function history(spec: string): GraphNode[] {
  return spec
    .trim()
    .split(/\s+/)
    .map((token) => {
      const [id, parents] = token.split(':');
      return { id: id!, parents: parents ? parents.split(',') : [] };
    });
}

/** Prints the graph like `git log --graph --oneline`: the node prefix plus the ID, then the connectors. */
function render(nodes: GraphNode[]): string {
  return drawGraph(nodes)
    .flatMap((row, i) => [`${row.node}${nodes[i]!.id}`, ...row.after])
    .join('\n');
}

/** Strips the indentation the test source adds, keeping each line's own leading spaces (" /"). */
function picture(strings: TemplateStringsArray): string {
  const lines = strings.raw.join('').split('\n').slice(1, -1);
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

describe('drawGraph', () => {
  it('draws a linear history as one lane with no connectors', () => {
    const rows = drawGraph(history('a3:a2 a2:a1 a1'));
    expect(rows).toEqual([
      { node: '* ', after: [], continuation: '| ' },
      { node: '* ', after: [], continuation: '| ' },
      { node: '* ', after: [], continuation: '  ' },
    ]);
  });

  it('returns no rows for no commits', () => {
    expect(drawGraph([])).toEqual([]);
  });

  it('draws a merge the way git does', () => {
    const nodes = history('c3:a2,b1 b1:a1 a2:a1 a1');
    expect(render(nodes)).toBe(picture`
      *   c3
      |\
      | * b1
      * | a2
      |/
      * a1
    `);
    expect(drawGraph(nodes).map((r) => r.continuation)).toEqual(['|   ', '| | ', '| | ', '  ']);
  });

  it('draws two branches forking from one commit', () => {
    expect(render(history('b2:b1 c2:c1 b1:a1 c1:a1 a1:a0 a0'))).toBe(picture`
      * b2
      | * c2
      * | b1
      | * c1
      |/
      * a1
      * a0
    `);
  });

  it('joins a second child into its parent lane at once', () => {
    expect(render(history('b2:a1 c2:a1 a1'))).toBe(picture`
      * b2
      | * c2
      |/
      * a1
    `);
  });

  it('draws a warm start as an extra parent reaching into the other branch', () => {
    // x is on branch B (first parent b1) and was initialised from main's a2.
    expect(render(history('a3:a2 x:b1,a2 b1:a1 a2:a1 a1'))).toBe(picture`
      * a3
      | * x
      |/|
      | * b1
      * | a2
      |/
      * a1
    `);
  });

  it('draws a warm start from a commit further down the other branch', () => {
    expect(render(history('x:b1,a1 a2:a1 b1:b0 a1:a0 b0:a0 a0'))).toBe(picture`
      *   x
      |\
      | | * a2
      | |/
      * | b1
      | * a1
      * | b0
      |/
      * a0
    `);
  });

  it("draws a three-parent commit with git's octopus bar", () => {
    const nodes = history('m:a,b,c c:r b:r a:r r');
    expect(render(nodes)).toBe(picture`
      *-.   m
      |\ \
      | | * c
      | * | b
      | |/
      * | a
      |/
      * r
    `);
    expect(drawGraph(nodes)[0]).toEqual({ node: '*-.   ', after: ['|\\ \\'], continuation: '| |   ' });
  });

  it('fans a three-parent commit out as a staircase when lanes sit to its right', () => {
    expect(render(history('z:m w:r m:a,b,c c:r b:r a:r r'))).toBe(picture`
      * z
      | * w
      * |     m
      |\ \
      |\ \ \
      | | * | c
      | | |/
      | * | b
      | |/
      * | a
      |/
      * r
    `);
  });

  it('ends the lane of a parent that is not in the list', () => {
    const nodes = history('b2:b1 a2:a1 b1:b0 a1:a0');
    expect(render(nodes)).toBe(picture`
      * b2
      | * a2
      * | b1
       /
      * a1
    `);
    expect(drawGraph(nodes).map((r) => r.continuation)).toEqual(['| ', '| | ', '  | ', '  ']);
  });

  it('keeps a merge parent that is not in the list off the graph', () => {
    expect(render(history('m:a2,gone a2:a1 a1'))).toBe(picture`
      * m
      * a2
      * a1
    `);
  });

  it('converges a lane across another one column per line', () => {
    expect(render(history('a1:r b1:q c1:r q:r r'))).toBe(picture`
      * a1
      | * b1
      | | * c1
      | |/
      |/|
      | * q
      |/
      * r
    `);
  });

  it('draws lanes that swap sides as a crossing', () => {
    // c's second parent q already has a lane (col 2) beyond x's lane (col 1), so the two swap.
    expect(render(history('top:c xt:x qt:q c:a,q q:r x:r a:r r'))).toBe(picture`
      * top
      | * xt
      | | * qt
      * | | c
      |\ X
      | * | q
      | | * x
      | |/
      * | a
      |/
      * r
    `);
  });

  it('ignores repeated parents and parents already printed', () => {
    expect(render(history('b:a,a,b a'))).toBe(picture`
      * b
      * a
    `);
  });

  it('keeps node and continuation the same width and trims connectors', () => {
    for (const row of drawGraph(zigZag(300))) {
      expect(row.continuation.length).toBe(row.node.length);
      expect(row.node.length % 2).toBe(0);
      for (const line of row.after) {
        expect(line).toBe(line.trimEnd());
        expect(line.length).toBeLessThanOrEqual(row.node.length);
      }
    }
  });

  it('is deterministic', () => {
    const nodes = zigZag(500);
    expect(drawGraph(nodes)).toEqual(drawGraph(structuredClone(nodes)));
  });
});

/**
 * Two branches committing in turn, each merging the other every few commits: the graph keeps
 * zig-zagging between two and three lanes.
 */
function zigZag(n: number): GraphNode[] {
  const nodes: GraphNode[] = [];
  const count = Math.floor(n / 2);
  for (let i = count; i >= 1; i--) {
    const base = i === 1 ? [] : [`a${i - 1}`];
    nodes.push({ id: `a${i}`, parents: i % 5 === 0 ? [...base, `b${i - 1}`] : base });
    nodes.push({ id: `b${i}`, parents: i === 1 ? ['a1'] : i % 7 === 0 ? [`b${i - 1}`, `a${i - 2}`] : [`b${i - 1}`] });
  }
  // b1 names a1 as parent, which precedes it here; move b1 above a1 so children come first.
  const b1 = nodes.pop()!;
  nodes.splice(nodes.length - 1, 0, b1);
  return nodes;
}

describe('drawGraph on large histories', () => {
  it('draws 10,000 linear commits in well under a second', () => {
    const nodes = Array.from({ length: 10_000 }, (_, i) => ({
      id: `c${10_000 - i}`,
      parents: i === 9_999 ? [] : [`c${9_999 - i}`],
    }));
    const start = performance.now();
    const rows = drawGraph(nodes);
    expect(performance.now() - start).toBeLessThan(1_000);
    expect(rows).toHaveLength(10_000);
    expect(rows.every((r) => r.node === '* ' && r.after.length === 0)).toBe(true);
  });

  it('draws 10,000 zig-zagging commits in well under a second', () => {
    const nodes = zigZag(10_000);
    const start = performance.now();
    const rows = drawGraph(nodes);
    expect(performance.now() - start).toBeLessThan(1_000);
    expect(rows).toHaveLength(10_000);
    expect(Math.max(...rows.map((r) => r.node.length))).toBeLessThanOrEqual(6);
    expect(rows.at(-1)).toEqual({ node: '* ', after: [], continuation: '  ' });
  });
});
