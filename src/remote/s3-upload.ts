// Uploads a staged pack file to S3 so that an interrupted upload, run again, sends at most the part that was in
// flight (spec/S3.md §4 step 2): the upload ID and each acknowledged part are recorded in a state file next to
// the staged file, and a re-run uploads only the parts not recorded there.
import * as fs from 'node:fs/promises';
import { CkvcError } from '../core/errors.js';
import { ioError, readFileIfExists, writeFileDurable } from '../store/durable-fs.js';
import type { S3Objects } from './s3-client.js';

const DEFAULT_PART_SIZE = 64 * 1024 * 1024;
const MIN_PART_SIZE = 64 * 1024;
const MAX_PARTS = 10_000;

interface UploadState {
  key: string;
  size: number;
  partSize: number;
  uploadId: string;
  parts: { n: number; etag: string }[];
}

/** The part size: CKVC_S3_PART_SIZE bytes (at least 64 KiB), else 64 MiB. */
export function partSize(): number {
  const raw = process.env.CKVC_S3_PART_SIZE;
  if (raw === undefined || raw === '') return DEFAULT_PART_SIZE;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < MIN_PART_SIZE) {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `CKVC_S3_PART_SIZE=${JSON.stringify(raw.slice(0, 40))} is not a whole number of bytes ` +
        `of at least ${MIN_PART_SIZE}; unset it for 64 MiB parts`,
      {},
    );
  }
  return n;
}

async function readState(file: string, key: string, size: number, part: number): Promise<UploadState | undefined> {
  const raw = await readFileIfExists(file);
  if (!raw) return undefined;
  try {
    const s = JSON.parse(raw.toString('utf8')) as UploadState;
    const sane =
      s.key === key &&
      s.size === size &&
      s.partSize === part &&
      typeof s.uploadId === 'string' &&
      Array.isArray(s.parts) &&
      s.parts.every((p) => Number.isSafeInteger(p.n) && typeof p.etag === 'string');
    return sane ? s : undefined;
  } catch {
    return undefined; // our own scratch file, half-written: start the upload over
  }
}

async function readPart(fh: fs.FileHandle, file: string, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  const { bytesRead } = await fh.read(buf, 0, length, offset).catch((e) => {
    throw ioError(e, 'read', file);
  });
  if (bytesRead !== length)
    throw new CkvcError('CKVC_IO', `${file} ended early (staged pack changed under us); remove it and push again`, {
      path: file,
    });
  return buf;
}

/** Uploads `file` to `key`; returns how many parts this call sent (a single-request upload counts as one). */
export async function uploadStagedPack(
  s3: S3Objects,
  key: string,
  file: string,
  stateFile: string,
): Promise<{ partsSent: number }> {
  const size = (
    await fs.stat(file).catch((e) => {
      throw ioError(e, 'read', file);
    })
  ).size;
  const part = Math.max(partSize(), Math.ceil(size / MAX_PARTS));
  if (size <= part) {
    const body = await fs.readFile(file).catch((e) => {
      throw ioError(e, 'read', file);
    });
    await s3.write(key, body);
    return { partsSent: 1 };
  }
  const count = Math.ceil(size / part);
  let state = await readState(stateFile, key, size, part);
  const fh = await fs.open(file, 'r').catch((e) => {
    throw ioError(e, 'read', file);
  });
  try {
    for (let attempt = 0; ; attempt++) {
      if (!state) {
        state = { key, size, partSize: part, uploadId: await s3.startUpload(key), parts: [] };
        await writeFileDurable(stateFile, JSON.stringify(state));
      }
      let sent = 0;
      let lost = false;
      const done = new Set(state.parts.map((p) => p.n));
      for (let n = 1; n <= count && !lost; n++) {
        if (done.has(n)) continue;
        const offset = (n - 1) * part;
        const etag = await s3.uploadPart(
          key,
          state.uploadId,
          n,
          await readPart(fh, file, offset, Math.min(part, size - offset)),
        );
        if (etag === 'unknown-upload') lost = true;
        else {
          state.parts.push({ n, etag });
          sent++;
          await writeFileDurable(stateFile, JSON.stringify(state));
        }
      }
      if (!lost) {
        const parts = [...state.parts].sort((a, b) => a.n - b.n);
        if ((await s3.completeUpload(key, state.uploadId, parts)) === 'done') return { partsSent: sent };
      }
      // The service forgot the upload (aborted or expired): once more from the start, then give up.
      if (attempt >= 1)
        throw new CkvcError('CKVC_REMOTE', `S3 lost the multipart upload of ${key} twice; push again`, { key });
      state = undefined;
    }
  } finally {
    await fh.close();
  }
}
