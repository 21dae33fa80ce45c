// The few S3 requests an s3 remote makes (spec/S3.md), over @aws-sdk/client-s3, which is loaded here on first
// use only: start-up of every other command does not pay for it. Every failure becomes a CkvcError: refused
// credentials are CKVC_UNAUTHORIZED (21), anything else CKVC_REMOTE (22), naming the bucket and key.
import { PassThrough, type Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { CkvcError } from '../core/errors.js';
import { readAtMost } from './bounded-read.js';
import type { S3Location } from './s3-location.js';
import { stalledError, stallTimeoutMs } from './stall-timeout.js';

type Sdk = typeof import('@aws-sdk/client-s3');

export interface Conditions {
  /** Write only if the object's ETag is still this. */
  ifMatch?: string;
  /** Write only if there is no object at the key. */
  ifAbsent?: boolean;
}

const DENIED = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'CredentialsProviderError',
]);

interface SdkFailure {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const statusOf = (e: unknown) => (e as SdkFailure)?.$metadata?.httpStatusCode;
const nameOf = (e: unknown) => (e as SdkFailure)?.name ?? '';

/** Text from the service or the network, made safe for one line of a terminal and capped. */
const printable = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').slice(0, 300);

export class S3Objects {
  private constructor(
    private readonly sdk: Sdk,
    private readonly client: S3Client,
    readonly loc: S3Location,
    readonly url: string,
    private readonly stallMs: number,
  ) {}

  static async connect(loc: S3Location, url: string): Promise<S3Objects> {
    // The SDK warns on every run under Node 20 that its releases after January 2027 will need Node 22; the version
    // ckvc depends on supports Node 20 (ckvc's own floor), so the warning would only be noise on every push.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const stallMs = stallTimeoutMs();
    const sdk = await import('@aws-sdk/client-s3');
    const endpoint = process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined;
    const client = new sdk.S3Client({
      region: process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || undefined,
      endpoint,
      forcePathStyle: Boolean(endpoint),
      maxAttempts: 3,
      // A service that stops answering fails the request (and the SDK tries it again) instead of hanging
      // (PROTOCOL.md §3.1): no connection within the stall time, or a connection silent for that long.
      ...(stallMs > 0 ? { requestHandler: { connectionTimeout: stallMs, socketTimeout: stallMs } } : {}),
      // No `Expect: 100-continue` on large bodies: the SDK then holds a body back up to 6 s for a 100 that some
      // services never send, and a stall time under that would give up on a healthy service. The cost: a
      // refused upload still sends its body (one part at most).
      expectContinueHeader: false,
      // S3-compatible services differ in the checksums they take; every object is re-hashed by its reader anyway.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    return new S3Objects(sdk, client, loc, url, stallMs);
  }

  /** The CkvcError for a failed request. */
  failure(e: unknown, what: string, key?: string): CkvcError {
    if (e instanceof CkvcError) return e;
    const name = nameOf(e);
    const message = printable((e as SdkFailure)?.message ?? String(e));
    const where = `s3://${this.loc.bucket}/${key ?? this.loc.prefix}`;
    const data = { url: this.url, key, s3Error: name, status: statusOf(e) };
    if (DENIED.has(name) || statusOf(e) === 403) {
      return new CkvcError(
        'CKVC_UNAUTHORIZED',
        `S3 refused to ${what} ${where}: ${name || 'HTTP 403'}: ${message}; ` +
          "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the bucket's permissions",
        data,
      );
    }
    if (name === 'TimeoutError') {
      const stalled = stalledError(this.url, this.stallMs, `cannot ${what} ${where}: S3`);
      return new CkvcError('CKVC_REMOTE', stalled.message, { ...data, ...stalled.data });
    }
    if (/region is missing/i.test(message)) {
      return new CkvcError('CKVC_REMOTE', `cannot ${what} ${where}: no AWS region is configured; set AWS_REGION`, data);
    }
    const net = (e as SdkFailure)?.code ?? (name === 'TimeoutError' ? 'timeout' : undefined);
    const hint =
      name === 'NoSuchBucket'
        ? '; the bucket does not exist: create it first'
        : net
          ? `; is the endpoint (${process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || 'AWS'}) reachable?`
          : '';
    const status = statusOf(e);
    return new CkvcError(
      'CKVC_REMOTE',
      `cannot ${what} ${where}: ${name || net || 'error'}${status ? ` (HTTP ${status})` : ''}: ${message}${hint}`,
      data,
    );
  }

  private async call<T>(what: string, key: string | undefined, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      throw this.failure(e, what, key);
    }
  }

  /** The whole object (at most `max` bytes) and its ETag, or undefined when there is none. */
  async read(key: string, max: number): Promise<{ body: Buffer; etag: string } | undefined> {
    const r = await this.open(key);
    if (!r) return undefined;
    if (r.size > max) {
      r.body.destroy();
      throw new CkvcError(
        'CKVC_REMOTE',
        `s3://${this.loc.bucket}/${key} is ${r.size} bytes, over the ${max} a ckvc remote writes there`,
        { url: this.url, key },
      );
    }
    const body = await this.call('read', key, () =>
      readAtMost(
        r.body,
        max,
        () =>
          new CkvcError('CKVC_REMOTE', `s3://${this.loc.bucket}/${key} sent more than ${max} bytes`, {
            url: this.url,
            key,
          }),
      ),
    );
    return { body, etag: r.etag };
  }

  /**
   * A stream of the object, or undefined when there is none. A failure while its bytes arrive (a stall, a reset)
   * reaches the reader as the CkvcError `failure` makes of it, like a failure of the request itself.
   */
  async open(key: string): Promise<{ body: Readable; size: number; etag: string } | undefined> {
    const r = await this.get(key);
    return r && { body: r.body, size: r.length, etag: r.etag };
  }

  /**
   * A stream of bytes [start, end) of the object with the object's whole size, or undefined when there is none;
   * `total` is undefined when the service sent the whole object instead (it ignores Range): `body` then holds all
   * of it. S3 clips a range at the object's end. (No suffix ranges: s3rver reads `bytes=-N` as the first N.)
   */
  async openRange(
    key: string,
    start: number,
    end: number,
  ): Promise<{ body: Readable; length: number; total?: number } | undefined> {
    const asked = `bytes=${start}-${end - 1}`;
    const r = await this.get(key, asked);
    if (!r) return undefined;
    if (r.contentRange === undefined) return { body: r.body, length: r.length };
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(r.contentRange);
    // Exactly what was asked, clipped at the object's end as S3 clips it: a longer answer would be read for nothing.
    const last = Math.min(end, Number(m?.[3])) - 1;
    if (!m || Number(m[1]) !== start || Number(m[2]) !== last || r.length !== last + 1 - start) {
      r.body.destroy();
      throw new CkvcError(
        'CKVC_REMOTE',
        `s3://${this.loc.bucket}/${key} answered ${asked} with another range (${printable(r.contentRange)}, ${r.length} bytes)`,
        { url: this.url, key },
      );
    }
    return { body: r.body, length: r.length, total: Number(m[3]) };
  }

  private async get(
    key: string,
    range?: string,
  ): Promise<{ body: Readable; length: number; etag: string; contentRange?: string } | undefined> {
    try {
      const r = await this.client.send(
        new this.sdk.GetObjectCommand({ Bucket: this.loc.bucket, Key: key, ...(range ? { Range: range } : {}) }),
      );
      const sdkBody = r.Body as Readable;
      if (r.ContentLength === undefined) {
        sdkBody.destroy();
        throw new CkvcError(
          'CKVC_REMOTE',
          `s3://${this.loc.bucket}/${key} was sent without a length (S3 always gives one); is AWS_ENDPOINT_URL an S3 service?`,
          { url: this.url, key },
        );
      }
      const body = new PassThrough({ highWaterMark: 1024 * 1024 });
      sdkBody.once('error', (e) => body.destroy(this.failure(e, 'read', key)));
      body.once('close', () => {
        if (!sdkBody.readableEnded) sdkBody.destroy();
      });
      sdkBody.pipe(body);
      return {
        body,
        length: r.ContentLength,
        etag: r.ETag ?? '',
        ...(range && r.ContentRange ? { contentRange: r.ContentRange } : {}),
      };
    } catch (e) {
      if (nameOf(e) === 'NoSuchKey' || (statusOf(e) === 404 && nameOf(e) !== 'NoSuchBucket')) return undefined;
      throw this.failure(e, 'read', key);
    }
  }

  async head(key: string): Promise<{ size: number; etag: string } | undefined> {
    try {
      const r = await this.client.send(new this.sdk.HeadObjectCommand({ Bucket: this.loc.bucket, Key: key }));
      return { size: r.ContentLength ?? 0, etag: r.ETag ?? '' };
    } catch (e) {
      if (nameOf(e) === 'NotFound' || nameOf(e) === 'NoSuchKey' || statusOf(e) === 404) return undefined;
      throw this.failure(e, 'look up', key);
    }
  }

  /** Writes `body` at `key`; 'conflict' when a condition failed (412, or 409 for a concurrent conditional write). */
  async write(key: string, body: Buffer, cond: Conditions = {}): Promise<{ etag: string } | 'conflict'> {
    try {
      const r = await this.client.send(
        new this.sdk.PutObjectCommand({
          Bucket: this.loc.bucket,
          Key: key,
          Body: body,
          ContentLength: body.length,
          ...(cond.ifMatch ? { IfMatch: cond.ifMatch } : {}),
          ...(cond.ifAbsent ? { IfNoneMatch: '*' } : {}),
        }),
      );
      return { etag: r.ETag ?? '' };
    } catch (e) {
      if (
        (cond.ifMatch || cond.ifAbsent) &&
        (statusOf(e) === 412 ||
          statusOf(e) === 409 ||
          nameOf(e) === 'PreconditionFailed' ||
          nameOf(e) === 'ConditionalRequestConflict')
      )
        return 'conflict';
      throw this.failure(e, 'write', key);
    }
  }

  async remove(key: string): Promise<void> {
    await this.call('delete', key, () =>
      this.client.send(new this.sdk.DeleteObjectCommand({ Bucket: this.loc.bucket, Key: key })),
    );
  }

  async startUpload(key: string): Promise<string> {
    const r = await this.call('start an upload to', key, () =>
      this.client.send(new this.sdk.CreateMultipartUploadCommand({ Bucket: this.loc.bucket, Key: key })),
    );
    if (!r.UploadId)
      throw new CkvcError('CKVC_REMOTE', `S3 gave no upload ID for s3://${this.loc.bucket}/${key}`, {
        url: this.url,
        key,
      });
    return r.UploadId;
  }

  /** Uploads one part; 'unknown-upload' when the service no longer knows the upload (aborted or expired). */
  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Buffer,
  ): Promise<string | 'unknown-upload'> {
    try {
      const r = await this.client.send(
        new this.sdk.UploadPartCommand({
          Bucket: this.loc.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
        }),
      );
      return r.ETag ?? '';
    } catch (e) {
      if (nameOf(e) === 'NoSuchUpload') return 'unknown-upload';
      throw this.failure(e, `upload part ${partNumber} of`, key);
    }
  }

  async completeUpload(
    key: string,
    uploadId: string,
    parts: { n: number; etag: string }[],
  ): Promise<'done' | 'unknown-upload'> {
    try {
      await this.client.send(
        new this.sdk.CompleteMultipartUploadCommand({
          Bucket: this.loc.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag })) },
        }),
      );
      return 'done';
    } catch (e) {
      if (nameOf(e) === 'NoSuchUpload') return 'unknown-upload';
      throw this.failure(e, 'finish the upload of', key);
    }
  }

  close(): void {
    this.client.destroy();
  }
}
