"""Command line for headless runs: ``python -m modaverse_lite COMMAND --help``."""

from __future__ import annotations

import argparse
import json
import sys

from .errors import ModaVerseError


def _print(obj, as_json: bool) -> None:
    if as_json:
        print(json.dumps(obj, indent=2, sort_keys=True))
    else:
        for key, value in obj.items():
            print(f"{key}: {value}")


def cmd_zoo(args) -> int:
    from . import zoo

    built = zoo.build_all(force=args.force)
    _print({name: str(path) for name, path in built.items()}, args.json)
    return 0


def cmd_probe(args) -> int:
    from .encode import linear_probe
    from .profiles import get_profile

    _print(linear_probe(get_profile(args.profile), seed=args.seed), args.json)
    return 0


def cmd_data(args) -> int:
    from . import dataset
    from .profiles import get_profile

    if args.data_command == "build":
        summary = dataset.build_world_dataset(args.out, get_profile(args.profile), seed=args.seed,
                                              records=args.records)
        _print(summary, args.json)
        return 0
    if args.data_command == "from-folder":
        summary = dataset.build_from_captions(args.table, args.out, seed=args.seed)
        _print(summary, args.json)
        return 0
    report = dataset.check_dataset(args.dir)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        print(report.format())
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modaverse_lite", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("zoo", help="build (or load from cache) the tiny profile's checkpoints")
    p.add_argument("--force", action="store_true", help="rebuild even if the cache is up to date")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_zoo)

    p = sub.add_parser("probe", help="held-out linear-probe accuracy of the frozen encoders' features")
    p.add_argument("--profile", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("data", help="build or check an instruction dataset")
    dsub = p.add_subparsers(dest="data_command", required=True)
    b = dsub.add_parser("build", help="build the default dataset from the synthetic world")
    b.add_argument("--profile", default="auto")
    b.add_argument("--out", required=True)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--records", type=int, default=None, help="number of records (default: the profile's)")
    b.add_argument("--json", action="store_true")
    f = dsub.add_parser("from-folder", help="build a dataset from a CSV or JSONL of (file, caption)")
    f.add_argument("table", help="CSV with columns file,caption or JSONL with keys file, caption")
    f.add_argument("--out", required=True)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--json", action="store_true")
    c = dsub.add_parser("check", help="validate a dataset folder; exits 1 if it has problems")
    c.add_argument("dir")
    c.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_data)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ModaVerseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
