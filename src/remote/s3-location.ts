// Where an s3 remote lives (spec/S3.md §1-2): s3://BUCKET/PREFIX/ and the keys of its layout under the prefix.
// Pure: no SDK, so `remote add` and URL checks never load it.
import { CkvcError } from '../core/errors.js';

export interface S3Location {
  bucket: string;
  /** '' or a prefix ending in '/'. */
  prefix: string;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9!_.*'()-]+$/;
const MAX_PREFIX = 512;

export const isS3Url = (url: string): boolean => /^s3:\/\//i.test(url);

/** Parses and checks s3://BUCKET[/PREFIX]; the canonical form ends in '/'. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/i.exec(url);
  const refuse = (why: string) =>
    new CkvcError('CKVC_BAD_ARGUMENT', `S3 remote URL ${JSON.stringify(url)}: ${why}; use s3://BUCKET/PREFIX`, { url });
  if (!m) throw refuse('does not parse');
  const bucket = m[1]!;
  if (!BUCKET.test(bucket) || bucket.includes('..'))
    throw refuse(`${JSON.stringify(bucket)} is not a bucket name (3 to 63 of a-z, 0-9, '.', '-')`);
  const raw = (m[2] ?? '').replace(/\/$/, '');
  const segments = raw === '' ? [] : raw.split('/');
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..' || !PREFIX_SEGMENT.test(s))
      throw refuse(
        `the prefix segment ${JSON.stringify(s)} is empty, '.', '..' or has characters other than ` +
          "A-Z a-z 0-9 ! - _ . * ' ( )",
      );
  }
  const prefix = segments.length ? `${segments.join('/')}/` : '';
  if (Buffer.byteLength(prefix) > MAX_PREFIX) throw refuse(`the prefix is over ${MAX_PREFIX} bytes`);
  return { bucket, prefix };
}

export const s3Url = (loc: S3Location): string => `s3://${loc.bucket}/${loc.prefix}`;

/** The keys of the layout (spec/S3.md §2). */
export const s3Keys = (loc: S3Location) => ({
  refs: `${loc.prefix}refs.json`,
  index: `${loc.prefix}index.json`,
  pack: (name: string) => `${loc.prefix}packs/${name}.bundle`,
  ids: (name: string) => `${loc.prefix}packs/${name}.ids`,
  probe: (random: string) => `${loc.prefix}.ckvc-probe/${random}`,
});
