"""``python3 -m ckvc evict-snapshots [--max-bytes N]``: the snapshot cache's eviction as a command."""

import argparse
import json
import sys
from typing import List, Optional

from ._errors import CkvcError
from ._snapshot_cache import evict_snapshots


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m ckvc", description="ckvc Python helper commands")
    commands = parser.add_subparsers(dest="command", required=True)
    evict = commands.add_parser("evict-snapshots", help="remove least recently used snapshot folders from the cache")
    evict.add_argument("--max-bytes", type=int, default=None,
                       help="keep at most this many bytes (default $CKVC_SNAPSHOT_CACHE_BYTES, else 20 GiB; 0 empties)")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(evict_snapshots(args.max_bytes), indent=2))
    except CkvcError as e:
        print("ckvc: {} [{}]".format(e, e.code), file=sys.stderr)
        return e.exit_code or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
