"""`python -m pimtrail.emulator DIR --port N`: serve an export directory as Microsoft Graph."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from . import Behaviour, Emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pimtrail.emulator",
                                     description="Serve an export directory the way Microsoft Graph would.")
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1", help="stay on loopback: the emulator has no real auth")
    parser.add_argument("--page-size", type=int, default=100, help="server-side page size (default 100)")
    parser.add_argument("--empty-pages", type=int, default=0, metavar="N",
                        help="serve the first N pages of every dataset empty, each with a nextLink")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--absent-empty", action="store_true",
                        help="answer an empty collection (not a 404) for datasets the export lacks")
    args = parser.parse_args(argv)

    emulator = Emulator(args.export_dir, page_size=args.page_size, host=args.host, port=args.port,
                        absent_empty=args.absent_empty)
    if args.empty_pages or args.latency:
        for name in emulator.tenant.chains:
            emulator.behaviours[name] = Behaviour(empty_pages=tuple(range(args.empty_pages)),
                                                  latency=args.latency)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops it as cleanly as Ctrl-C
    emulator.start()
    print(f"Graph emulator for tenant {emulator.tenant.tenant_id} at {emulator.base_url}  (Ctrl-C stops)",
          flush=True)
    print(f"  pimtrail collect --source graph --graph-url {emulator.base_url}  "
          "(any token: PIMTRAIL_GRAPH_TOKEN=test)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        print(f"served {len(emulator.log)} requests", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
