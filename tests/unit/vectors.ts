// Loads spec/vectors/*.json: the tests check the code against the spec's vectors, not against itself.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function loadVector<T = any>(name: string): T {
  return JSON.parse(readFileSync(fileURLToPath(new URL(`../../spec/vectors/${name}`, import.meta.url)), 'utf8')) as T;
}

export const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
export const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
