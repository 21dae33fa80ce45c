// An S3 server for the s3 remote tests: s3rver (a Node server speaking the S3 protocol, storing in a folder) in a
// child process on 127.0.0.1 behind a logging, fault-injecting proxy (tests/helpers/s3-server-main.mjs). s3rver
// ignores conditional writes, which is what the probe must find out about it; with `conditional` the proxy
// honours them the way AWS S3 does.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 's3-server-main.mjs');

export interface S3Server {
  endpoint: string;
  bucket: string;
  /** s3rver's folder: DIR/BUCKET/KEY._S3rver_object holds each object's bytes. */
  dataDir: string;
  /** The environment a ckvc process needs to reach it (credentials s3rver accepts, no profile files). */
  env(extra?: Record<string, string | undefined>): Record<string, string | undefined>;
  /** Requests since the last `clearLog()`, "METHOD PATH?QUERY STATUS" each (DROPPED for a dropped one). */
  requests(): string[];
  clearLog(): void;
  /** Drops every multipart part upload after the first `n` that went through (undefined: none). */
  failPartsAfter(n: number | undefined): void;
  /** Conditional mode: an If-Match write to a key ending in `suffix` finds it replaced first (undefined: none). */
  replaceBeforeWrite(suffix: string | undefined): void;
  /** GETs of keys ending in `suffix` send their headers and first 4 KiB, then stall (undefined: none). */
  stallBodiesOf(suffix: string | undefined): void;
  /** GETs are answered with the whole object, Range or not (a service that ignores it), while `on`. */
  ignoreRanges(on: boolean): void;
  /** Ranges are answered on to the object's end (more than was asked), while `on`. */
  widenRanges(on: boolean): void;
  /** The file holding an object's bytes. */
  objectFile(key: string): string;
  /** The refs a remote at s3://BUCKET/PREFIX holds (its refs.json; {} when it has none). */
  refs(prefix: string): Record<string, string>;
  /** Every object under PREFIX (key -> sha256 of its bytes): what must not change when a command fails. */
  snapshot(prefix: string): Map<string, string>;
  /** Copies the remote at PREFIX to a new prefix with one byte flipped in the middle of every pack; returns it. */
  damagedCopy(prefix: string): string;
  stop(): Promise<void>;
}

/** `conditional`: the proxy honours If-Match / If-None-Match as AWS S3 does (s3rver alone ignores them). */
export async function startS3Server(dir: string, opts: { conditional?: boolean } = {}): Promise<S3Server> {
  const bucket = 'ckvc-test';
  const args = [MAIN, dir, bucket, ...(opts.conditional ? ['conditional'] : [])];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the S3 test server did not start within 15 s: ${err}`)), 15_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!out.includes('\n')) return;
      clearTimeout(timer);
      resolve((JSON.parse(out.slice(0, out.indexOf('\n'))) as { endpoint: string }).endpoint);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the S3 test server exited (${code}): ${err}`));
    });
  });
  const log = path.join(dir, 'requests.log');
  const dataDir = path.join(dir, 'data');
  const objectFile = (key: string) => `${path.join(dataDir, bucket, ...key.split('/'))}._S3rver_object`;
  const withSlash = (prefix: string) => prefix.replace(/\/?$/, '/');
  let copies = 0;
  const setFault = (f: object | undefined) => {
    if (f === undefined) fs.rmSync(path.join(dir, 'fault.json'), { force: true });
    else fs.writeFileSync(path.join(dir, 'fault.json'), JSON.stringify(f));
  };
  return {
    endpoint,
    bucket,
    dataDir,
    env: (extra = {}) => ({
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_SESSION_TOKEN: undefined,
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: endpoint,
      AWS_ENDPOINT_URL_S3: undefined,
      AWS_PROFILE: undefined,
      AWS_CONFIG_FILE: path.join(dir, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-aws-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      CKVC_S3_PART_SIZE: undefined,
      // A request s3rver or the proxy leaves unanswered is tried again after 20 s (the SDK asks 3 times), well
      // inside a test's 120 s, instead of hanging the test: every request here answers in well under a second.
      CKVC_REMOTE_TIMEOUT_MS: '20000',
      ...extra,
    }),
    requests: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : []),
    clearLog: () => fs.rmSync(log, { force: true }),
    failPartsAfter: (n) => setFault(n === undefined ? undefined : { failPartsAfter: n }),
    replaceBeforeWrite: (suffix) => setFault(suffix === undefined ? undefined : { replaceBeforeWrite: suffix }),
    stallBodiesOf: (suffix) => setFault(suffix === undefined ? undefined : { stallBodiesOf: suffix }),
    ignoreRanges: (on) => setFault(on ? { ignoreRanges: true } : undefined),
    widenRanges: (on) => setFault(on ? { widenRanges: true } : undefined),
    objectFile: (key) => objectFile(key),
    refs: (prefix) => {
      const f = objectFile(`${withSlash(prefix)}refs.json`);
      return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as { refs: Record<string, string> }).refs : {};
    },
    snapshot: (prefix) => {
      const root = path.join(dataDir, bucket, ...withSlash(prefix).split('/').filter(Boolean));
      const out = new Map<string, string>();
      if (!fs.existsSync(root)) return out;
      for (const f of (fs.readdirSync(root, { recursive: true }) as string[]).sort()) {
        if (f.endsWith('._S3rver_object'))
          out.set(
            f,
            createHash('sha256')
              .update(fs.readFileSync(path.join(root, f)))
              .digest('hex'),
          );
      }
      return out;
    },
    damagedCopy: (prefix) => {
      const from = path.join(dataDir, bucket, ...withSlash(prefix).split('/').filter(Boolean));
      const copy = `damaged-${++copies}-${path.basename(from)}`;
      const to = path.join(dataDir, bucket, copy);
      fs.cpSync(from, to, { recursive: true });
      for (const f of fs.readdirSync(path.join(to, 'packs')).filter((n) => n.endsWith('.bundle._S3rver_object'))) {
        const b = fs.readFileSync(path.join(to, 'packs', f));
        b[b.length >> 1]! ^= 0x10;
        fs.writeFileSync(path.join(to, 'packs', f), b);
      }
      return copy;
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    },
  };
}
