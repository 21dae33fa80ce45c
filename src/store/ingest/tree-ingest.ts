// Commits the user's paths as one tree: a single directory becomes the root itself; files or several paths
// become entries of the root named by their base names. What is taken is decided first (input-scan.ts: names
// checked, symlinks inside folders skipped, the store being written to left out), then the data is read.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { ObjectId } from '../../core/store-format/object-id.js';
import { encodeTree, type TreeEntry } from '../../core/store-format/objects/tree-object.js';
import type { ObjectWriter } from '../object-writer.js';
import { checkChunkingConfig, type StoreConfig } from '../store-layout.js';
import type { DeltaBases } from './delta-bases.js';
import { ingestFile, type KnownFiles } from './file-ingest.js';
import { scanInputs, type InputNode } from './input-scan.js';

export interface IngestSummary {
  files: number;
  tensors: number;
  bytes: number;
  /** Notes that did not stop the commit (symlinks skipped, tensor names that could not be read). */
  warnings: string[];
  /** Files taken from the files cache without being read (FORMAT.md §19). */
  unread: number;
}

export type IngestProgress = (event: { path: string; bytes: number }) => void;

class TreeIngest {
  readonly summary: IngestSummary = { files: 0, tensors: 0, bytes: 0, warnings: [], unread: 0 };

  constructor(
    private readonly writer: ObjectWriter,
    private readonly config: StoreConfig,
    private readonly progress?: IngestProgress,
    private readonly signal?: AbortSignal,
    private readonly bases?: DeltaBases,
    private readonly known?: KnownFiles,
  ) {}

  async entry(node: InputNode, prefix: string): Promise<TreeEntry> {
    const treePath = prefix ? `${prefix}/${node.name}` : node.name;
    if (node.kind === 'dir') {
      const { id, size } = await this.tree(node.children, treePath);
      return { name: node.name, type: 'tree', id, size };
    }
    const delta = this.bases && { bases: this.bases, path: treePath };
    const known = this.known && { files: this.known, path: treePath };
    const f = await ingestFile(node.path, this.writer, this.config, this.signal, { follow: node.named }, delta, known);
    this.summary.files++;
    if (f.unread) this.summary.unread++;
    this.summary.tensors += f.tensors;
    this.summary.bytes += f.size;
    this.summary.warnings.push(...f.warnings);
    this.progress?.({ path: node.path, bytes: f.size });
    return { name: node.name, type: 'file', id: f.id, size: f.size };
  }

  async tree(nodes: InputNode[], prefix: string): Promise<{ id: ObjectId; size: number }> {
    const entries: TreeEntry[] = [];
    for (const n of nodes) entries.push(await this.entry(n, prefix));
    const size = entries.reduce((a, e) => a + e.size, 0);
    return { id: await this.writer.put('tree', encodeTree({ entries })), size };
  }
}

export interface IngestOptions {
  /** The store being written to: never committed into itself. */
  storeRoot: string;
  progress?: IngestProgress;
  signal?: AbortSignal;
  /** The parent commit's tensors: changed chunks are stored as deltas against them (FORMAT.md §4.3). */
  bases?: DeltaBases;
  /** The files cache: files unchanged since they were stored are not read (FORMAT.md §19). */
  known?: KnownFiles;
}

export async function ingestPaths(
  paths: string[],
  writer: ObjectWriter,
  config: StoreConfig,
  opts: IngestOptions,
): Promise<{ tree: ObjectId; summary: IngestSummary }> {
  checkChunkingConfig(config, opts.storeRoot);
  const storeRoot = await fs.realpath(opts.storeRoot).catch(() => path.resolve(opts.storeRoot));
  const scan = await scanInputs(paths, storeRoot);
  const ing = new TreeIngest(writer, config, opts.progress, opts.signal, opts.bases, opts.known);
  ing.summary.warnings.push(...scan.warnings);
  const { id } = await ing.tree(scan.entries, '');
  return { tree: id, summary: ing.summary };
}
