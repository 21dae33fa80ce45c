"""Text that ships with Debian, for training the benchmark's models.

Pretraining text: the licence texts every Debian system has (/usr/share/common-licenses) and the packages'
copyright files (/usr/share/doc/*/copyright). Fine-tuning text: the Python standard library's sources (present
wherever python3 is, which the benchmark needs anyway). Each source falls back to the other, and to a
repetition of what was found, so a minimal system still gives enough bytes.
"""
import glob
import os
import sys


def _read_files(paths, limit):
    seen = set()
    parts = []
    total = 0
    for p in paths:
        try:
            if not os.path.isfile(p) or os.path.islink(p):
                continue
            with open(p, 'rb') as f:
                data = f.read(1 << 20)
        except OSError:
            continue
        if data in seen or b'\0' in data:
            continue  # many packages share one copyright text; binary files are not text
        seen.add(data)
        parts.append(data)
        total += len(data)
        if total >= limit:
            break
    return b'\n'.join(parts)


def pretraining_text(limit=8 << 20):
    paths = sorted(glob.glob('/usr/share/common-licenses/*')) + sorted(glob.glob('/usr/share/doc/*/copyright'))
    text = _read_files(paths, limit)
    if len(text) < (1 << 20):
        print(f'corpus: only {len(text)} bytes of licence/copyright text; adding Python sources', file=sys.stderr)
        text += b'\n' + finetuning_text(limit - len(text))
    return text


def finetuning_text(limit=4 << 20):
    roots = sorted(glob.glob('/usr/lib/python3*/')) or [os.path.dirname(os.__file__)]
    paths = []
    for root in roots:
        paths += sorted(glob.glob(os.path.join(root, '*.py')))
        paths += sorted(glob.glob(os.path.join(root, '*', '*.py')))
    text = _read_files(paths, limit)
    if len(text) < (256 << 10):
        print(f'corpus: only {len(text)} bytes of Python sources; adding licence texts', file=sys.stderr)
        text += b'\n' + _read_files(sorted(glob.glob('/usr/share/common-licenses/*')), limit)
    if not text:
        raise SystemExit('corpus: found no text at all under /usr/share/common-licenses, /usr/share/doc or the Python library')
    while len(text) < (256 << 10):
        text += text
    return text
