"""Writes safetensors files by hand, laid out as the reference writer (`safetensors.torch.save_file`) does.

Debian bookworm ships no `python3-safetensors`, and the benchmark must run on plain Debian packages, so the
format is written here: 8-byte little-endian header length, compact JSON header (`__metadata__` first),
tensors sorted by dtype (widest alignment first, in the reference `Dtype` enum order) then by name in UTF-8
byte order, the header padded with spaces to a multiple of 8, then each tensor's little-endian bytes.
"""
import json
import os
import struct
import sys

import torch

# The reference crate's Dtype enum, widest alignment first (spec/SAFETENSORS.md, "Layout").
DTYPE_ORDER = ['U64', 'I64', 'F64', 'C64', 'F32', 'U32', 'I32', 'BF16', 'F16', 'U16', 'I16',
               'F8_E8M0', 'F8_E4M3', 'F8_E5M2', 'I8', 'U8', 'F6_E3M2', 'F6_E2M3', 'F4', 'BOOL']

DTYPES = {
    torch.float64: 'F64', torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16',
    torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8', torch.uint8: 'U8',
    torch.bool: 'BOOL',
}

if sys.byteorder != 'little':
    raise SystemExit('safetensors_writer: this writer assumes a little-endian machine')


def tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)  # numpy has no bfloat16; the bits are what the file holds
    return t.numpy().tobytes()


def save_file(tensors, path, metadata=None):
    """tensors: {name: torch.Tensor}. Written to PATH.tmp and renamed, so a reader never sees half a file."""
    for name, t in tensors.items():
        if t.dtype not in DTYPES:
            raise ValueError(f'safetensors_writer: tensor {name!r} has dtype {t.dtype}, which this writer does not map')
    items = sorted(tensors.items(), key=lambda kv: (DTYPE_ORDER.index(DTYPES[kv[1].dtype]), kv[0].encode('utf-8')))
    header = {}
    if metadata:
        header['__metadata__'] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    for name, t in items:
        blob = tensor_bytes(t)
        header[name] = {'dtype': DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    js = json.dumps(header, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
    js += b' ' * ((8 - len(js) % 8) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(js)))
        f.write(js)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def load_file(path):
    """Reads back what save_file wrote (used to check the writer, not by the benchmark itself)."""
    import numpy as np
    with open(path, 'rb') as f:
        data = f.read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop('__metadata__', None)
    base = 8 + n
    inv = {v: k for k, v in DTYPES.items()}
    out = {}
    for name, h in header.items():
        b, e = h['data_offsets']
        raw = bytearray(data[base + b:base + e])
        dtype = inv[h['dtype']]
        if dtype == torch.bfloat16:
            t = torch.from_numpy(np.frombuffer(raw, dtype=np.int16).copy()).view(torch.bfloat16)
        else:
            t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(h['shape'])
    return out
