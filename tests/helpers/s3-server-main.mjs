// A real S3 server for tests, in its own process (tests run ckvc with spawnSync, which would stall an in-process
// server): s3rver storing in DIR/data, behind a forwarding proxy on 127.0.0.1 that logs every request to
// DIR/requests.log ("METHOD PATH?QUERY STATUS" per line) and, while DIR/fault.json says {"failPartsAfter": N},
// drops the connection of every multipart part upload after the first N that went through.
// Prints {"endpoint": URL} on its first line of stdout once both listen.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import S3rver from 's3rver';

const dir = process.argv[2];
const bucket = process.argv[3] ?? 'ckvc-test';
const data = path.join(dir, 'data');
fs.mkdirSync(data, { recursive: true });
const s3 = new S3rver({ address: '127.0.0.1', port: 0, directory: data, silent: true, configureBuckets: [{ name: bucket }] });
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

const proxy = http.createServer((req, res) => {
  const isPart = req.method === 'PUT' && /[?&]partNumber=/.test(req.url ?? '');
  const f = fault();
  if (isPart && typeof f.failPartsAfter === 'number' && partsPassed >= f.failPartsAfter) {
    fs.appendFileSync(log, `${req.method} ${req.url} DROPPED\n`);
    req.socket.destroy();
    return;
  }
  const up = http.request({ host: upstream.address, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
    if (isPart && r.statusCode === 200) partsPassed++;
    fs.appendFileSync(log, `${req.method} ${req.url} ${r.statusCode}\n`);
    res.writeHead(r.statusCode ?? 502, r.headers);
    r.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
});
proxy.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ endpoint: `http://127.0.0.1:${proxy.address().port}` })}\n`);
});
