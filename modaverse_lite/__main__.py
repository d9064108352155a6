"""Command line for headless runs: ``python -m modaverse_lite COMMAND --help``."""

from __future__ import annotations

import argparse
import json
import sys

from . import bench, claim, compare, report, zoo
from .assistant import Assistant
from .dataset import build_from_captions, build_world_dataset, default_dataset
from .errors import ModaVerseError
from .evaluate import linear_probe
from .profiles import get_profile
from .records import check_dataset
from .roundtrip import format_roundtrip, roundtrip_eval
from .train import TrainConfig, align_train
from .tutorial import run_notebooks


def _print(obj, as_json: bool) -> None:
    if as_json:
        print(json.dumps(obj, indent=2, sort_keys=True))
    else:
        for key, value in obj.items():
            print(f"{key}: {value}")


def cmd_zoo(args) -> int:
    built = zoo.build_all(force=args.force)
    _print({name: str(path) for name, path in built.items()}, args.json)
    return 0


def cmd_probe(args) -> int:
    _print(linear_probe(get_profile(args.profile), seed=args.seed), args.json)
    return 0


def cmd_data(args) -> int:
    if args.data_command == "build":
        profile = get_profile(args.profile)
        records = args.records if args.records is not None else profile.dataset_records
        summary = build_world_dataset(args.out, records=records, seed=args.seed, pairs=profile.pairs)
        _print(summary, args.json)
        return 0
    if args.data_command == "from-folder":
        summary = build_from_captions(args.table, args.out, seed=args.seed)
        _print(summary, args.json)
        return 0
    report = check_dataset(args.dir)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        print(report.format())
    return 0 if report.ok else 1


def cmd_train(args) -> int:
    data = args.data or default_dataset(args.profile, args.seed)  # the default world dataset, built on first use
    config = TrainConfig.from_profile(args.profile, data_dir=data, out_dir=args.out, seed=args.seed,
                                      steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                      resume=not args.fresh, progress=not args.json)
    result = align_train(config)
    if not result.main_process:  # torchrun / accelerate launch: the main process reports for the run
        return 0
    summary = {"checkpoint": str(result.checkpoint), "steps": result.steps, "train_seconds": result.seconds,
               "final_loss": result.history[-1][1] if result.history else None, **result.metrics}
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        m = result.metrics.get("overall", {})
        print(f"checkpoint: {result.checkpoint}\nsteps: {result.steps} in {result.seconds} s")
        for name, section in (("held-out", result.metrics.get("per_split", {}).get("val", {})),
                              ("unseen", result.metrics.get("unseen", {}).get("overall", {})), ("all", m)):
            print(f"{name}: routing {section.get('routing')}, exact {section.get('exact')}, "
                  f"attributes {section.get('attributes')}, parse {section.get('parse')}")
    return 0


def cmd_bench(args) -> int:
    if args.what == "align":
        result = bench.bench_align(args.profile, steps=args.steps or 20, seed=args.seed, rounds=args.rounds)
    elif args.what == "seeds":
        result = bench.bench_seeds(args.profile, seeds=tuple(args.seeds), steps=args.steps, progress=not args.json)
        if args.write:  # the demos profile's figures: docs/demos.json and the README's demo tables
            result = report.write_demos(result, args.readme, args.demoed)
            print(f"written: {args.demoed} and the demo tables of {args.readme}", file=sys.stderr)
        if not args.json:
            for run in result["runs"]:
                print(", ".join(f"{k} {v}" for k, v in run.items() if not isinstance(v, dict)))
            for key, s in result["summary"].items():
                print(f"{key}: mean {s['mean']}, min {s['min']}, max {s['max']}")
            return 0
    elif args.what in ("compare", "claim"):  # measured on equal terms; --write: the JSON and the README tables
        if args.what == "compare":
            result = bench.bench_compare(args.profile, methods=args.methods, quick=args.quick, progress=not args.json)
            write, where, rows = report.write_compare, args.compared, compare.table
        else:
            result = bench.bench_claim(args.profile, arms=args.arms, quick=args.quick, progress=not args.json)
            write, where, rows = report.write_claim, args.claimed, claim.table
        if args.write:
            result = write(result, args.readme, where)
            print(f"written: {where} and the {args.what} tables of {args.readme}", file=sys.stderr)
        if not args.json:
            for row in rows(result):
                print(", ".join(f"{k} {v}" for k, v in row.items()))
            return 0
    elif args.what == "report":
        result = report.measure(args.profile, seeds=tuple(args.seeds), zoo_from_scratch=not args.no_zoo,
                                progress=not args.json)
        report.write(result, args.readme, args.measured)
        if not args.json:
            print(report.render(result))
            print(f"\nwritten: {args.measured} and the table of {args.readme}")
            return 0
    else:
        result = bench.bench_dispatch(args.n)
    _print(result, args.json)
    return 0


def cmd_chat(args) -> int:
    media = {m: getattr(args, m) for m in ("image", "audio", "video") if getattr(args, m)}
    reply = Assistant(args.checkpoint, out_dir=args.out)(args.instruction, seed=args.seed, **media)
    print(json.dumps(reply.to_dict(), indent=2) if args.json else reply.format())
    return 0


def cmd_eval(args) -> int:
    result = roundtrip_eval(args.checkpoint, n_per_modality=args.n, seed=args.seed)
    print(json.dumps(result, indent=2, sort_keys=True) if args.json else format_roundtrip(result))
    return 0


def cmd_tutorial(args) -> int:
    runs = run_notebooks(args.out, parameters=dict(args.parameter or []) or None, names=args.notebook or None)
    for run in runs:
        print(f"{run['name']}: {run['seconds']:.1f} s -> {run['output']}")
    return 0


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
    b = dsub.add_parser("build", help="build the default dataset from the synthetic world (the demos profile: every "
                                      "pair, edits and two-medium and two-output requests included)")
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

    p = sub.add_parser("train", help="align-train: projections + LoRA, one stage")
    p.add_argument("--profile", default="auto")
    p.add_argument("--data", default=None, help="dataset folder (default: the world dataset, built on first use)")
    p.add_argument("--out", required=True, help="run folder; its checkpoint/ is resumed if present")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("bench", help="benchmarks: align (training throughput), seeds (scores over several "
                                     "training seeds), compare (the alignment families on equal terms), dispatch "
                                     "(overhead), or report (written into the README's measured table and "
                                     "docs/measured.json)")
    p.add_argument("what", choices=["align", "seeds", "compare", "claim", "dispatch", "report"])
    p.add_argument("--profile", default="tiny")
    p.add_argument("--steps", type=int, default=None, help="align: timed steps (20); seeds: training steps")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds: which training seeds")
    p.add_argument("--rounds", type=int, default=3, help="align: passes over the timed batches")
    p.add_argument("--n", type=int, default=1000, help="dispatch requests")
    p.add_argument("--methods", nargs="+", default=None, help="compare: which methods (default: all of "
                                                                 "compare.METHODS)")
    p.add_argument("--arms", nargs="+", default=None, help="claim: which arms (default: all of claim.ARMS)")
    p.add_argument("--quick", action="store_true", help="compare, claim: the quick budget (CI), not the full one")
    p.add_argument("--write", action="store_true", help="compare, claim, seeds (--profile demos): write the result "
                                                        "and its tables into the README")
    p.add_argument("--compared", default="docs/compare.json", help="compare --write: where the result is written")
    p.add_argument("--claimed", default="docs/claim.json", help="claim --write: where the result is written")
    p.add_argument("--demoed", default="docs/demos.json", help="seeds --write: where the result is written")
    p.add_argument("--readme", default="README.md", help="report, compare/claim/seeds --write: the README whose "
                                                         "tables are rewritten")
    p.add_argument("--measured", default="docs/measured.json", help="report: where the figures are written")
    p.add_argument("--no-zoo", action="store_true", help="report: skip timing a zoo build from scratch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("chat", help="ask a trained assistant; prints the meta-response and the files it wrote")
    p.add_argument("instruction")
    p.add_argument("--checkpoint", required=True)
    for m in ("image", "audio", "video"):
        p.add_argument(f"--{m}", default=None, help=f"an input {m} file (two media at once, e.g. --image F --audio G, "
                                                    f"for a checkpoint trained on them: the demos profile)")
    p.add_argument("--out", default="runs/outputs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("eval", help="evaluations of a trained checkpoint")
    p.add_argument("what", choices=["roundtrip"])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--n", type=int, default=100, help="items per modality")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("tutorial", help="execute every notebook in order with papermill")
    p.add_argument("--out", default="runs")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="a notebook parameter, converted to the type of its default")
    p.add_argument("--notebook", action="append", help="run only these (e.g. 01); default: all, in order")
    p.set_defaults(func=cmd_tutorial)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ModaVerseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
