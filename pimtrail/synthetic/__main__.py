"""`python -m pimtrail.synthetic --preset large --days 1 --out DIR`: write synthetic export directories."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from . import DEFAULT_START, PRESETS, generate
from .writer import LAYOUTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pimtrail.synthetic",
                                     description="Write a deterministic synthetic tenant as pimtrail export "
                                                 "directories (one per day, named by date).")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small",
                        help="small: ~500 users (tests); large: 100,000 users, 5,000 privileged principals")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the preset's counts (e.g. 0.1)")
    parser.add_argument("--days", type=int, default=1, help="how many daily exports (default 1)")
    parser.add_argument("--every", type=int, default=1, metavar="N", help="days between two exports (default 1)")
    parser.add_argument("--churn", type=float, default=0.005,
                        help="share of users, assignments and memberships that change per day (default 0.005)")
    parser.add_argument("--signin-share", type=float, default=0.0, metavar="SHARE",
                        help="share of enabled users whose sign-in times move each day (default 0: only as many "
                             "as the churn; a real tenant's token refreshes move most users', e.g. 0.8)")
    parser.add_argument("--incremental-audit", action="store_true",
                        help="exports after the first hold the audit events since the previous one "
                             "(less an hour), as a daily `pimtrail collect --source graph --db` asks; "
                             "default: the whole window")
    parser.add_argument("--layout", choices=LAYOUTS, default="lines",
                        help="lines: one element a line; graph: each body on one line, as Graph sends it and the "
                             "live collector writes it (default lines)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START, help="first day (YYYY-MM-DD)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the exports into")
    args = parser.parse_args(argv)
    if args.days < 1 or args.every < 1 or not 0 <= args.churn < 1 or args.scale <= 0 or not 0 <= args.signin_share <= 1:
        parser.error("--days and --every must be at least 1, --churn in [0, 1), --signin-share in [0, 1], "
                     "--scale above 0")
    preset = PRESETS[args.preset] if args.scale == 1 else PRESETS[args.preset].scaled(args.scale)
    began = time.perf_counter()
    roots = generate(args.out, preset, days=args.days, churn=args.churn, seed=args.seed, start=args.start,
                     every=args.every, incremental_audit=args.incremental_audit,
                     signin_share=args.signin_share, layout=args.layout)
    print(f"wrote {len(roots)} export(s) of tenant preset {preset.name} to {args.out} "
          f"in {time.perf_counter() - began:.1f} s (config: {args.out / 'pimtrail.toml'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
