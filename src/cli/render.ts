// Text rendering for humans: sizes, times, metrics, short IDs, colour only when allowed.
import { escaped } from './terminal-text.js';

export const useColor = (): boolean =>
  Boolean(process.stdout.isTTY) && !process.env.NO_COLOR && process.env.TERM !== 'dumb';

export function paint(code: number, s: string): string {
  return useColor() ? `\x1b[${code}m${s}\x1b[0m` : s;
}
export const yellow = (s: string) => paint(33, s);
export const green = (s: string) => paint(32, s);
export const bold = (s: string) => paint(1, s);
export const dim = (s: string) => paint(2, s);

export function short(id: string): string {
  return id.slice(0, 12);
}

export { bytes } from '../core/byte-size.js';

export function time(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

/** One number format for metrics in text output: 6 significant digits (integers whole); --json keeps them exact. */
export function metricValue(v: number): string {
  if (!Number.isFinite(v) || (Number.isInteger(v) && Math.abs(v) < 1e15)) return String(v);
  return String(Number(v.toPrecision(6)));
}

export function metrics(m: Record<string, number>): string {
  return Object.entries(m)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${escaped(k)}=${metricValue(v)}`)
    .join(' ');
}

export function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

export function info(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** JSON has no NaN or Infinity: a non-finite metric is written as the string Python's float() reads back. */
function nonFiniteAsText(_key: string, v: unknown): unknown {
  if (typeof v !== 'number' || Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

export function json(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, nonFiniteAsText, 2)}\n`);
}
