// A minimal safetensors writer for the examples (what `safetensors.torch.save_file` produces, for F32 tensors).
import * as fs from 'node:fs';

/** tensors: { name: Float32Array } plus optional shapes: { name: number[] }. */
export function saveSafetensors(file, tensors, shapes = {}, metadata = undefined) {
  const header = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, arr] of Object.entries(tensors)) {
    header[name] = {
      dtype: 'F32',
      shape: shapes[name] ?? [arr.length],
      data_offsets: [offset, offset + arr.byteLength],
    };
    offset += arr.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  fs.writeSync(fd, len);
  fs.writeSync(fd, json);
  for (const arr of Object.values(tensors))
    fs.writeSync(fd, new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
  fs.closeSync(fd);
  fs.renameSync(tmp, file); // renamed into place: a reader never sees half a checkpoint
}
