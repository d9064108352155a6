"""The measured table: one command runs every measurement the README quotes, and writes them down.

``python -m modaverse_lite bench report`` measures, on the machine it runs on, in the tiny profile: the zoo build,
the frozen features' linear probes, the dataset build, three seeds of align-training with their scores (worst seed
beside the mean, and against the targets the project holds itself to: ``TARGETS``), the round trip of seed 0's
checkpoint, training throughput and dispatch overhead. It writes everything to ``docs/measured.json`` and renders
the README's "Measured" table between its two markers, with the machine, the versions and the date. Nothing in
that table is typed by hand, and a test checks that the README shows exactly what ``docs/measured.json`` holds.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from . import bench, claim, compare, files, instructions, zoo
from .dataset import build_world_dataset
from .evaluate import linear_probe
from .profiles import Profile, get_profile
from .records import check_dataset
from .roundtrip import roundtrip_eval

BEGIN = "<!-- measured:begin — written by `python -m modaverse_lite bench report`; do not edit by hand -->"
END = "<!-- measured:end -->"
COMPARE_BEGIN = ("<!-- compare:begin — written by `python -m modaverse_lite bench compare --write`; do not edit by "
                 "hand -->")
COMPARE_END = "<!-- compare:end -->"
CLAIM_BEGIN = "<!-- claim:begin — written by `python -m modaverse_lite bench claim --write`; do not edit by hand -->"
CLAIM_END = "<!-- claim:end -->"
DEMOS_BEGIN = ("<!-- demos:begin — written by `python -m modaverse_lite bench seeds --profile demos --write`; do not "
               "edit by hand -->")
DEMOS_END = "<!-- demos:end -->"
#: What the tiny profile must reach on its *worst* seed (``bench seeds``), and the most training time per seed.
TARGETS = {"val_routing": 0.99, "val_exact": 0.97, "val_pair_exact_min": 0.90, "unseen_exact": 0.90,
           "phrasing_exact": 0.80, "train_seconds": 180.0}
LIBRARIES = ("torch", "transformers", "peft", "diffusers", "accelerate", "tokenizers")


def machine() -> dict:
    """Where and when the figures were measured: CPU, cores, threads, Python, library versions, date, commit."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip() or None
    with zoo.fixed_threads(get_profile("tiny").train.threads):
        threads = torch.get_num_threads()  # what the tiny profile's zoo, encoders and training use
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": threads, "gpu": gpu,
            "python": platform.python_version(), "date": datetime.date.today().isoformat(), "commit": commit,
            "versions": {name: importlib.metadata.version(name) for name in LIBRARIES}}


def _timed(fn):
    began = time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - began, 1)


def _zoo_from_scratch() -> dict:
    """Seconds to build the tiny zoo in an empty cache, then to find it there."""
    saved = os.environ.get("MODAVERSE_CACHE")
    with tempfile.TemporaryDirectory(prefix="modaverse-zoo-") as tmp:
        os.environ["MODAVERSE_CACHE"] = tmp
        try:
            _, scratch = _timed(lambda: zoo.build_all(force=False))
            _, cached = _timed(lambda: zoo.build_all(force=False))
        finally:
            if saved is None:
                os.environ.pop("MODAVERSE_CACHE")
            else:
                os.environ["MODAVERSE_CACHE"] = saved
    return {"scratch_s": scratch, "cached_s": cached}


def targets_met(summary: dict) -> dict[str, bool]:
    """Whether the worst seed of a ``bench_seeds`` summary reaches each of ``TARGETS``."""
    return {key: (summary[key]["max"] <= bound if key == "train_seconds" else summary[key]["min"] >= bound)
            for key, bound in TARGETS.items()}


def measure(profile: str | Profile = "tiny", seeds: tuple[int, ...] = (0, 1, 2), zoo_from_scratch: bool = True,
            progress: bool = True) -> dict:
    """Run every measurement of the README's table; returns what ``write`` writes (minutes: three trainings)."""
    p = get_profile(profile)
    out = {"machine": machine(), "profile": p.name}
    if zoo_from_scratch:
        out["zoo"] = _zoo_from_scratch()
    zoo.build_all()
    out["probe"] = linear_probe(p, seed=0)
    with tempfile.TemporaryDirectory(prefix="modaverse-data-") as tmp:
        summary, seconds = _timed(lambda: build_world_dataset(Path(tmp) / "data", records=p.dataset_records,
                                                              seed=0, progress=False, pairs=p.pairs))
        out["dataset"] = {"records": summary["records"], "seconds": seconds,
                          "problems": check_dataset(Path(tmp) / "data").to_dict()["problems"]}
    runs = files.cache_dir() / "runs" / "report"
    shutil.rmtree(runs, ignore_errors=True)
    out["seeds"] = bench.bench_seeds(p, seeds=seeds, out_dir=runs, progress=progress)
    out["seeds"]["targets"] = TARGETS
    out["seeds"]["targets_met"] = targets_met(out["seeds"]["summary"])
    trip = roundtrip_eval(runs / f"seed{seeds[0]}", seed=0)
    out["roundtrip"] = {m: {"test": r["accuracy"], "unseen": r["unseen"]["accuracy"]} for m, r in trip.items()}
    out["align"] = bench.bench_align(p)
    out["dispatch"] = bench.bench_dispatch()
    return out


def _fmt(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _spread(summary: dict, key: str) -> str:
    s = summary[key]
    return f"worst {_fmt(s['min'])}, mean {_fmt(s['mean'])}"


def render(m: dict) -> str:
    """The README's measured table (markdown) for a ``measure`` result."""
    mach, seeds = m["machine"], m["seeds"]
    summary, runs = seeds["summary"], seeds["runs"]
    # the order of docs/measured.json (sorted keys), so the table rendered from the file is the table written
    versions = ", ".join(f"{k} {v}" for k, v in sorted(mach["versions"].items()))
    per_seed = lambda key: " / ".join(_fmt(r[key]) for r in runs)  # noqa: E731
    met = seeds["targets_met"]
    rows = [
        ("building the tiny zoo from scratch / from the cache", "`python -m modaverse_lite zoo`",
         f"{_fmt(m['zoo']['scratch_s'])} s / {_fmt(m['zoo']['cached_s'])} s" if "zoo" in m else "not measured"),
        ("linear-probe accuracy of the frozen features (fresh media, unseen combinations included)",
         "`probe --profile tiny --json`", ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(m["probe"].items()))),
        (f"building the default dataset ({m['dataset']['records']:,} records + media), then `data check`",
         "`data build --profile tiny --out DIR`", f"{_fmt(m['dataset']['seconds'])} s; "
                                                  f"{m['dataset']['problems']} problems"),
        (f"align-train, seeds {' / '.join(str(s) for s in seeds['seeds'])}, each on its own dataset: "
         "seconds of training", "`bench seeds --seeds 0 1 2 --json`",
         f"{per_seed('train_seconds')} s (target ≤ {_fmt(seeds['targets']['train_seconds'])} s: "
         f"{'✓' if met['train_seconds'] else '✗'})"),
    ]
    names = {"val_routing": "held-out routing", "val_exact": "held-out exact",
             "val_pair_exact_min": "held-out exact of the weakest pair", "unseen_exact": "unseen combinations exact",
             "unseen_attributes": "unseen combinations, attributes right", "phrasing_exact": "unseen phrasings exact"}
    for key, name in names.items():
        target = seeds["targets"].get(key)
        mark = f" (target ≥ {_fmt(target)}: {'✓' if met[key] else '✗'})" if target is not None else ""
        rows.append((f"— {name}", "same run", f"{per_seed(key)}; {_spread(summary, key)}{mark}"))
    trip = m["roundtrip"]
    rows.append(("round trip of seed 0: LLM → meta-response → renderer → frozen encoder agrees (test split; unseen "
                 "combinations)", "`eval roundtrip --checkpoint DIR --json`",
                 ", ".join(f"{k} {_fmt(v['test'])} ({_fmt(v['unseen'])})" for k, v in sorted(trip.items()))))
    a = m["align"]
    align = (f"ours {_fmt(a['ours_samples_per_s'])} vs paper-style {_fmt(a['naive_samples_per_s'])} samples/s "
             f"(ratio {_fmt(a['ratio'])}; caching alone {_fmt(a['ratio_caching_alone'])}); our step "
             f"{_fmt(a['ms_per_sample']['ours']['step'])} ms per sample; peak RSS {_fmt(a['peak_memory_mb'])} MB")
    align += (f"; our step {a['ours_flops_per_step'] / 1e9:.2f} GFLOP, {a['ours_flops_per_s'] / 1e9:.1f} GFLOP/s "
              f"against a dense matmul's {a['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s (ratio "
              f"{_fmt(a['ours_flops_ratio'])})")
    rows.append(("training throughput: our loop vs. a loop shaped like the paper's reference code",
                 "`bench align --json`", align))
    rows.append(("dispatch overhead (parse + route, generator loaded)", "`bench dispatch --json`",
                 f"{_fmt(m['dispatch']['per_request_ms'])} ms per request"))
    gpu = f", GPU {mach['gpu']}" if mach["gpu"] else ", no GPU"
    head = (f"Measured on {mach['date']} at commit `{mach['commit']}`, on {mach['cpu']} ({mach['cores']} cores, "
            f"{mach['torch_threads']} torch threads{gpu}), Python {mach['python']}, {versions}; profile "
            f"`{m['profile']}`. Every figure below comes from one run of `python -m modaverse_lite bench report`.")
    table = ["| what | command | result |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join([head, "", *table])


def replace_table(readme: str, table: str, begin: str = BEGIN, end: str = END) -> str:
    """``readme`` with the text between the ``begin`` and ``end`` lines replaced by ``table``."""
    if readme.count(begin) != 1 or readme.count(end) != 1 or readme.index(begin) > readme.index(end):
        raise ValueError(f"the README needs one {begin!r} line and one {end!r} line after it")
    head, rest = readme.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n{table}\n{end}{tail}"


def write(measured: dict, readme: str | os.PathLike = "README.md",
          json_path: str | os.PathLike = "docs/measured.json") -> None:
    """Write ``measured`` to ``json_path`` and its table into ``readme`` (both atomically)."""
    readme = Path(readme)
    new = replace_table(readme.read_text(encoding="utf-8"), render(measured))
    files.write_text(Path(json_path), json.dumps(measured, indent=2, sort_keys=True) + "\n")
    files.write_text(readme, new)


# ---- the alignment families' comparison (``bench compare --write``) -------------------------------------------
def _markdown(rows: list[dict]) -> list[str]:
    keys = list(rows[0])
    return (["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            + ["| " + " | ".join("–" if row[k] is None else _fmt(row[k]) for k in keys) + " |" for row in rows])


def _measured_on(result: dict) -> str:
    """Where a written result was measured: date, commit, CPU, cores, torch threads, library versions."""
    mach = result["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in sorted(mach["versions"].items()))
    return (f"Measured on {mach['date']} at commit `{mach['commit']}`, on {mach['cpu']} ({mach['cores']} cores, "
            f"{result['threads']} torch threads), {versions}")


def render_compare(result: dict) -> str:
    """The README's comparison tables (markdown) for a ``bench compare`` result with its ``machine``: each method
    at its best rate, then every rate of every sweep."""
    config = result["config"]
    head = (f"{_measured_on(result)}; profile `{result['profile']}`, the "
            f"`{result['preset']}` budget: {config['steps']} steps of batch {config['batch_size']}, seeds "
            f"{' / '.join(map(str, config['seeds']))}, {config['eval_items']} records of each split scored, "
            f"{len(result['methods'])} methods × {len(config['lr_factors'])} learning rates × "
            f"{len(config['seeds'])} seeds in {result['seconds'] / 60:.1f} min. One run of "
            f"`python -m modaverse_lite bench compare --write`; mean over the seeds, worst seed in brackets.")
    return "\n".join([head, "", *_markdown(compare.table(result)), "", "Every learning rate of every sweep:", "",
                       *_markdown(compare.sweep_table(result))])


def write_compare(result: dict, readme: str | os.PathLike = "README.md",
                  json_path: str | os.PathLike = "docs/compare.json") -> dict:
    """Add the ``machine`` to a ``bench compare`` result, write it to ``json_path`` (without loss histories) and
    its tables into ``readme``; returns what was written."""
    written = {**compare.without_curves(result), "machine": machine()}
    _write_block(written, render_compare(written), readme, json_path, COMPARE_BEGIN, COMPARE_END)
    return written


def _write_block(written: dict, block: str, readme, json_path, begin: str, end: str) -> None:
    readme = Path(readme)
    new = replace_table(readme.read_text(encoding="utf-8"), block, begin, end)
    files.write_text(Path(json_path), json.dumps(written, indent=2, sort_keys=True) + "\n")
    files.write_text(readme, new)


# ---- the paper's claim (``bench claim --write``) ------------------------------------------------------------------
def render_claim(result: dict) -> str:
    """The README's claim tables (markdown) for a ``bench claim`` result with its ``machine``: each arm at its best
    rate, the data cuts, the stages, then every rate of every sweep."""
    config = result["config"]
    head = (f"{_measured_on(result)}; profile `{result['profile']}`, the "
            f"`{result['preset']}` budget: {config['steps']} instruction steps of batch {config['batch_size']} "
            f"(three-stage arms: {config['caption_steps']} + {config['decoding_steps']} steps before them), seeds "
            f"{' / '.join(map(str, config['seeds']))}, {config['eval_items']} records per output modality and split "
            f"in the round trip, {len(result['arms'])} arms × {len(config['lr_factors'])} learning rates × "
            f"{len(config['seeds'])} seeds plus {len(config['data_sizes'])} data cuts in "
            f"{result['seconds'] / 60:.1f} min. One run of `python -m modaverse_lite bench claim --write`; mean "
            "over the seeds, worst seed in brackets.")
    return "\n".join([head, "", *_markdown(claim.table(result)), "", "Data efficiency (each arm at its best rate):",
                      "", *_markdown(claim.data_table(result)), "", "What trains in each stage (first seed):", "",
                      *_markdown(claim.stage_table(result)), "", "Every learning rate of every sweep:", "",
                      *_markdown(claim.sweep_table(result))])


def write_claim(result: dict, readme: str | os.PathLike = "README.md",
                json_path: str | os.PathLike = "docs/claim.json") -> dict:
    """Add the ``machine`` to a ``bench claim`` result, write it to ``json_path`` (without loss histories) and its
    tables into ``readme``; returns what was written."""
    written = {**claim.without_curves(result), "machine": machine()}
    _write_block(written, render_claim(written), readme, json_path, CLAIM_BEGIN, CLAIM_END)
    return written


# ---- the demo requests over three seeds (``bench seeds --profile demos --write``) -------------------------------
def _targets_rows(result: dict) -> list[dict]:
    summary, met = result["summary"], targets_met(result["summary"])
    rows = []
    for key, bound in TARGETS.items():
        time = key == "train_seconds"
        rows.append({"what": key, "per seed": " / ".join(_fmt(r[key]) for r in result["runs"]),
                     "worst": summary[key]["max" if time else "min"], "mean": summary[key]["mean"],
                     "target": f"{'≤' if time else '≥'} {_fmt(bound)}", "met": "✓" if met[key] else "✗"})
    return rows


def _mean_worst(values: list[float]) -> str:
    return f"{_fmt(round(sum(values) / len(values), 4))} ({_fmt(min(values))})" if values else "–"


def _kind(pair: str) -> str:
    inputs, outputs = pair.split("->")
    if pair in instructions.EDIT_PAIRS:
        return "edit"
    return "two outputs" if "+" in outputs else "two media in" if inputs.count("+") > 1 else "default"


def pairs_rows(result: dict, splits: tuple[str, ...] = ("val", "unseen", "phrasing")) -> list[dict]:
    """One row per pair of a ``bench seeds`` result: exact per split, mean over the seeds (worst seed), and for a
    two-output pair each segment's exact on held-out records."""
    runs = result["runs"]
    pairs = dict.fromkeys(p for r in runs for s in splits for p in r["per_pair_exact"].get(s, {}))
    rows = []
    for pair in instructions.ALL_PAIRS:
        if pair not in pairs:
            continue
        row = {"pair": f"`{pair}`", "kind": _kind(pair)}
        for s in splits:
            row[s] = _mean_worst([r["per_pair_exact"][s][pair] for r in runs if pair in r["per_pair_exact"].get(s, {})])
        segments = [r["per_segment"]["val"][pair]["segment_exact"] for r in runs
                    if pair in r.get("per_segment", {}).get("val", {})]
        row["val, each segment"] = (" + ".join(_mean_worst([seg[j] for seg in segments])
                                               for j in range(len(segments[0]))) if segments else "–")
        rows.append(row)
    return rows


def render_demos(result: dict) -> str:
    """The README's demo-requests tables (markdown) for a ``bench seeds`` result with its ``machine``: the tiny
    profile's targets on the worst seed, then every pair per split."""
    runs = result["runs"]
    head = (f"{_measured_on(result)}; profile `{result['profile']}`, {runs[0]['steps']} "
            f"steps, seeds {' / '.join(str(r['seed']) for r in runs)}, each on its own dataset. One run of "
            f"`python -m modaverse_lite bench seeds --profile {result['profile']} --write`.")
    return "\n".join([head, "", "The tiny profile's targets (`report.TARGETS`), on the worst seed:", "",
                      *_markdown(_targets_rows(result)), "",
                      "Every pair, exact answers per split: mean over the seeds (worst seed); `–`: the split has no "
                      "record of the pair. A two-output answer is exact only when both segments are:", "",
                      *_markdown(pairs_rows(result))])


def write_demos(result: dict, readme: str | os.PathLike = "README.md",
                json_path: str | os.PathLike = "docs/demos.json") -> dict:
    """Add the ``machine`` and the targets to a ``bench seeds`` result of the ``demos`` profile, write it to
    ``json_path`` and its tables into ``readme``; returns what was written."""
    if result["profile"] != "demos":
        raise ValueError(f"bench seeds --write writes the demos profile's figures; this run is {result['profile']!r}")
    written = {**result, "machine": machine(), "targets": TARGETS, "targets_met": targets_met(result["summary"])}
    _write_block(written, render_demos(written), readme, json_path, DEMOS_BEGIN, DEMOS_END)
    return written
