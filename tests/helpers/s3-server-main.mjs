// A real S3 server for tests, in its own process (tests run ckvc with spawnSync, which would stall an in-process
// server): s3rver storing in DIR/data, behind a forwarding proxy on 127.0.0.1 that logs every request to
// DIR/requests.log ("METHOD PATH?QUERY STATUS [if-match|if-none-match]" per line) and, while DIR/fault.json
// says {"failPartsAfter": N}, drops the connection of every multipart part upload after the first N that went
// through.
// With a third argument "conditional", the proxy also honours conditional writes (If-None-Match: * and If-Match on
// PUT, answered 412 PreconditionFailed as S3 does), checking s3rver's folder with each such write serialised: the
// behaviour of AWS S3, R2 or MinIO, which s3rver lacks, for the tests of the path that relies on it. While
// fault.json says {"replaceBeforeWrite": SUFFIX}, an If-Match write to a key ending in SUFFIX finds the object
// replaced (a new ETag) just before, as if another writer had got there first. While fault.json says
// {"stallBodiesOf": SUFFIX}, a GET of a key ending in SUFFIX is answered with its headers and first 4 KiB, then
// nothing more (the connection stays open): a service that stops mid-object. While fault.json says
// {"ignoreRanges": true}, GETs lose their Range header: a service that sends whole objects; while it says
// {"widenRanges": true}, a range runs on to the object's end: a service that sends more than was asked.
// Prints {"endpoint": URL} on its first line of stdout once both listen.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import S3rver from 's3rver';

const dir = process.argv[2];
const bucket = process.argv[3] ?? 'ckvc-test';
const conditional = process.argv[4] === 'conditional';
const data = path.join(dir, 'data');
fs.mkdirSync(data, { recursive: true });
const s3 = new S3rver({
  address: '127.0.0.1',
  port: 0,
  directory: data,
  silent: true,
  configureBuckets: [{ name: bucket }],
});
const upstream = await s3.run();
const log = path.join(dir, 'requests.log');
let partsPassed = 0;
let faultWritten = 0;

/** The fault asked for; the count of parts that went through restarts whenever fault.json is written again. */
function fault() {
  try {
    const file = path.join(dir, 'fault.json');
    const written = fs.statSync(file).mtimeMs;
    if (written !== faultWritten) {
      faultWritten = written;
      partsPassed = 0;
    }
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return {};
  }
}

/** s3rver keeps KEY's bytes in DIR/data/BUCKET/KEY._S3rver_object and their MD5 (its ETag) beside them. */
function objectFile(urlPath) {
  const parts = urlPath.split('?')[0].split('/').filter(Boolean).map(decodeURIComponent);
  return `${path.join(data, ...parts)}._S3rver_object`;
}

function etagOf(urlPath) {
  const file = objectFile(urlPath);
  try {
    return `"${fs.readFileSync(`${file}.md5`, 'utf8').trim()}"`;
  } catch {
    return fs.existsSync(file) ? '"?"' : undefined;
  }
}

let writes = Promise.resolve();
/** Runs conditional writes one at a time: the check and the write are one step, as on a real service. */
function serialised(step) {
  const run = writes.then(() => new Promise(step));
  writes = run.catch(() => {});
}

function refuse(req, res) {
  fs.appendFileSync(log, `${req.method} ${req.url} 412\n`);
  res.writeHead(412, { 'content-type': 'application/xml', connection: 'close' });
  res.end(
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code>' +
      '<Message>At least one of the pre-conditions you specified did not hold</Message></Error>',
  );
}

const proxy = http.createServer((req, res) => {
  const ifNone = req.headers['if-none-match'];
  const ifMatch = req.headers['if-match'];
  if (conditional && req.method === 'PUT' && (ifNone || ifMatch)) {
    serialised((done) => {
      const f = fault();
      if (ifMatch && f.replaceBeforeWrite && (req.url ?? '').split('?')[0].endsWith(f.replaceBeforeWrite)) {
        // Another writer replaced the object between this writer's read and its write: a new ETag.
        fs.writeFileSync(`${objectFile(req.url ?? '')}.md5`, crypto.randomBytes(16).toString('hex'));
      }
      const etag = etagOf(req.url ?? '');
      if ((ifNone === '*' && etag !== undefined) || (ifMatch && ifMatch !== etag)) {
        refuse(req, res);
        done();
      } else forward(req, res, done);
    });
    return;
  }
  forward(req, res, () => {});
});

function forward(req, res, finished) {
  // A conditional write holds the queue until it is answered: released once, whether the upstream reply ends or
  // the client's connection closes first (a client that goes away mid-reply must not stall every later write).
  let released = false;
  const done = () => {
    if (released) return;
    released = true;
    finished();
  };
  res.once('close', done);
  const isPart = req.method === 'PUT' && /[?&]partNumber=/.test(req.url ?? '');
  const f = fault();
  if (isPart && typeof f.failPartsAfter === 'number' && partsPassed >= f.failPartsAfter) {
    fs.appendFileSync(log, `${req.method} ${req.url} DROPPED\n`);
    req.socket.destroy();
    return;
  }
  const { method, url, headers } = req;
  // A service that ignores Range answers with the whole object (200), as HTTP allows.
  if (method === 'GET' && f.ignoreRanges) delete headers.range;
  // A service that answers more than was asked: the range runs on to the object's end.
  if (method === 'GET' && f.widenRanges && headers.range) headers.range = headers.range.replace(/-\d+$/, '-');
  const target = { host: upstream.address, port: upstream.port, method, path: url, headers };
  const stall = method === 'GET' && f.stallBodiesOf && (url ?? '').split('?')[0].endsWith(f.stallBodiesOf);
  const up = http.request(target, (r) => {
    if (isPart && r.statusCode === 200) partsPassed++;
    const cond = req.headers['if-match'] ? ' if-match' : req.headers['if-none-match'] ? ' if-none-match' : '';
    fs.appendFileSync(log, `${req.method} ${req.url} ${r.statusCode}${stall ? ' STALLED' : ''}${cond}\n`);
    res.writeHead(r.statusCode ?? 502, r.headers);
    if (stall) {
      let sent = 0;
      r.on('data', (c) => {
        if (sent < 4096) res.write(c.subarray(0, 4096 - sent));
        sent += c.length;
      });
      return;
    }
    r.pipe(res);
    r.on('end', done);
  });
  up.on('error', () => {
    res.destroy();
    done();
  });
  req.pipe(up);
}
proxy.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ endpoint: `http://127.0.0.1:${proxy.address().port}` })}\n`);
});
