// How one input file is cut into recipe parts before any of it is stored: byte ranges kept verbatim and byte
// ranges that are one tensor each. A format reader only reads headers to make the plan; the plan is checked to
// cover the file exactly once, then executed by the ingest (spec/FORMAT.md §5.3, spec/ARCHIVES.md).
import type { JsonArrayLayout } from '../../core/input-formats/json-array-render.js';
import type { PackedTensor } from '../../core/store-format/objects/file-recipe.js';

/**
 * The version of the rules that cut a file into parts (which formats are read, how tensors and verbatim regions
 * are laid out). Raise it whenever they change: the files cache (spec/FORMAT.md §19) holds recipes cut by these
 * rules, and a cache written under other rules is ignored, so an unchanged file is cut again by the new ones.
 */
export const FILE_PLAN_RULES = 2;

export type Region =
  | { kind: 'verbatim'; start: number; end: number }
  | {
      kind: 'tensor';
      start: number;
      end: number;
      name: string;
      /** The file's other names for this whole tensor (FORMAT.md §5.3). */
      tied?: string[];
      dtype: string;
      shape: number[];
      groupWidth: number;
      order?: 'F';
    }
  /**
   * A tensor whose file bytes are text (`text`, already read and checked to render back exactly from `data`):
   * its element bytes `data` are stored, the file part says how to render them (spec/JSON.md).
   */
  | {
      kind: 'rendered';
      start: number;
      end: number;
      name: string;
      dtype: string;
      shape: number[];
      groupWidth: number;
      data: Uint8Array;
      text: Uint8Array;
      json: JsonArrayLayout;
    };

export type TensorRegion = Extract<Region, { kind: 'tensor' }>;
export type RenderedRegion = Extract<Region, { kind: 'rendered' }>;

export type { PackedTensor };

export interface FilePlan {
  format: string;
  regions: Region[];
  /** Tensors inside compressed regions (deflated .npz members): listed, not addressable. */
  packed?: PackedTensor[];
}

/** Accumulates regions in file order, dropping empty verbatim gaps. */
export class PlanBuilder {
  readonly regions: Region[] = [];
  readonly packed: PackedTensor[] = [];
  private pos = 0;

  constructor(
    readonly format: string,
    private readonly size: number,
  ) {}

  /** Keeps everything from the current position up to `end` verbatim. */
  verbatimTo(end: number): void {
    if (end > this.pos) this.regions.push({ kind: 'verbatim', start: this.pos, end });
    this.pos = Math.max(this.pos, end);
  }

  tensor(t: Omit<TensorRegion, 'kind'>): void {
    this.verbatimTo(t.start);
    this.regions.push({ kind: 'tensor', ...t });
    this.pos = t.end;
  }

  rendered(t: Omit<RenderedRegion, 'kind'>): void {
    this.verbatimTo(t.start);
    this.regions.push({ kind: 'rendered', ...t });
    this.pos = t.end;
  }

  done(): FilePlan {
    this.verbatimTo(this.size);
    return { format: this.format, regions: this.regions, ...(this.packed.length ? { packed: this.packed } : {}) };
  }
}

/** A plan must tile [0, size) with no gap or overlap: the rebuilt file is then the original, byte for byte. */
export function planCoverageProblem(plan: FilePlan, size: number): string | undefined {
  let pos = 0;
  for (const r of plan.regions) {
    if (r.start !== pos) return `region at ${r.start} does not follow the previous one ending at ${pos}`;
    if (r.end < r.start) return `region at ${r.start} ends before it starts`;
    pos = r.end;
  }
  return pos === size ? undefined : `regions end at ${pos}, the file at ${size}`;
}
