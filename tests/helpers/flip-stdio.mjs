// A hostile far side for SSH remote tests, used as --remote-ckvc: `node flip-stdio.mjs COMMAND ARGS...` runs
// COMMAND (the real `ckvc serve --stdio PATH` follows in ARGS) and relays its pipes, but flips one bit in the
// middle of the first large chunk of the first bundle it sends back (an application/octet-stream reply). The
// HTTP framing is parsed and left intact, so the client receives a well-framed reply carrying a damaged object.
import { spawn } from 'node:child_process';

const [cmd, ...args] = process.argv.slice(2);
const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
process.stdin.pipe(child.stdin);
child.on('exit', (code) => (process.exitCode = code ?? 1));

const MIN_CHUNK = 1024;
let flipped = false;
let head = ''; // bytes of the current reply's head, until its blank line
let inBundle = false;
let chunkLine = ''; // a chunk-size line being read
let chunkLeft = 0; // data bytes left in the current chunk (then its CRLF)
let chunkSize = 0;

/** Walks the bytes of `buf`, flipping at most one; the state carries over between pieces. */
function relay(buf) {
  for (let i = 0; i < buf.length; i++) {
    if (flipped) break;
    if (!inBundle) {
      head += String.fromCharCode(buf[i]);
      if (head.endsWith('\r\n\r\n')) {
        inBundle = /content-type: application\/octet-stream/i.test(head) && /transfer-encoding: chunked/i.test(head);
        head = '';
      }
      continue;
    }
    if (chunkLeft > 0) {
      const take = Math.min(chunkLeft, buf.length - i);
      const at = chunkSize - chunkLeft; // offset of buf[i] in the chunk
      const middle = chunkSize >> 1;
      if (chunkSize >= MIN_CHUNK && middle >= at && middle < at + take) {
        buf[i + middle - at] ^= 0x10;
        flipped = true;
      }
      chunkLeft -= take;
      i += take - 1;
      continue;
    }
    chunkLine += String.fromCharCode(buf[i]);
    if (chunkLine.endsWith('\r\n')) {
      const size = parseInt(chunkLine, 16);
      chunkLine = '';
      if (Number.isNaN(size)) continue; // the CRLF after a chunk's data
      chunkSize = size;
      chunkLeft = size;
      if (size === 0) inBundle = false; // the last chunk (no trailers are sent)
    }
  }
  process.stdout.write(buf);
}

child.stdout.on('data', relay);
child.stdout.on('end', () => process.stdout.end());
