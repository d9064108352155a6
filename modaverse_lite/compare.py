"""Alignment families, compared on equal terms: ``python -m modaverse_lite bench compare --json``.

A multimodal LLM must turn frozen media features into something its LLM reads, and decide how much of the LLM to
tune. The families differ in those two choices, and each method here is one line of ``METHODS``: a name, its
family, the input side (``aligners.INPUT_SIDES``), the LLM adapter (``aligners.ADAPTERS``) and the paper.

Every method gets the same treatment, so that a difference in the table is a difference of the methods:

* the same datasets (seed ``s`` trains on the profile's world dataset of seed ``s``), the same seeds, the same
  step budget and batch size, the same evaluation subsets (``CompareConfig``: the ``full`` and ``quick`` presets);
* the same learning-rate sweep: the method's own rate (the profile's ``lr`` × ``Method.lr_scale``) × each of
  ``CompareConfig.lr_factors``, so every method gets as many values, chosen by one rule, and all are shown; the
  **best setting** is the rate with the best mean held-out exact over the seeds (ties: the lower rate), reported
  with its worst seed beside its mean — a baseline that was not tuned is not a result;
* per run: trainable and total parameters (the input side and the LLM; the frozen encoders are the same for all),
  training seconds (evaluation excluded, as ``align_train`` counts them) and peak memory (``_peak_mb``), the steps
  and seconds until the periodic held-out exact first reaches ``target`` (None: never, within the budget), final
  held-out / unseen-combination / unseen-phrasing exact and routing, overall and per pair;
* **language retention** (``retention``), LaVIN's question of whether tuning for media costs the LLM its language:
  the LLM's mean next-token loss on held-out world text (``held_out_text``: plain sentences about the attribute
  combinations the LLM never read, no media, no chat format) and the exact score of the held-out split's
  text→text records, *before* (the base LLM: the adapter of a fresh model switched off) and *after* (the aligned
  model, its adapter on). "Before" text→text exact is what the base LLM answers when asked in the chat format
  with no alignment at all: it never learnt to answer with a meta-response, so it shows where the format starts,
  not knowledge that alignment later keeps or loses.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from . import world, zoo
from .aligners import ADAPTERS, INPUT_SIDES
from .dataset import default_dataset
from .errors import ProfileError
from .evaluate import answer, summarise
from .model import Example, build_model
from .profiles import Profile, get_profile
from .records import read_records
from .train import TrainConfig, align_train
from .zoo.text import world_corpus

SPLITS = {"val": "held-out", "unseen": "unseen combinations", "phrasing": "unseen phrasings"}


@dataclass(frozen=True)
class Method:
    """One arm of the comparison: which input side and which adapter, and the paper they come from."""

    name: str
    family: str
    aligner: str  # a key of aligners.INPUT_SIDES
    adapter: str  # a key of aligners.ADAPTERS
    paper: str
    lr_scale: float = 1.0  # the method's own learning rate: the profile's lr × this (the centre of its sweep)


#: The centres of the sweeps come from one pilot run each (docs/NOTES.md): LaVIN's adapters give the LLM ten times
#: fewer trainable weights than LoRA and were still improving at 10× LoRA's rate (LaVIN too trains at a high rate).
METHODS: tuple[Method, ...] = (
    Method("modaverse", "converter", "linear", "lora", "ModaVerse (Wang et al., CVPR 2024); LLaVA"),
    Method("perceiver", "perceiver", "perceiver", "lora", "Flamingo (Alayrac et al., 2022); BLIP-2 (Li et al., 2023)"),
    Method("onellm", "universal", "universal", "lora", "OneLLM (Han et al., CVPR 2024)"),
    Method("lavin", "mixture-of-modality", "lavin", "moma", "LaVIN (Luo et al., NeurIPS 2023)", lr_scale=10.0),
    Method("tools", "tool learning", "tool", "lora", "Visual ChatGPT (Wu et al., 2023); HuggingGPT (Shen et al., "
                                                      "2023)"),
    Method("full", "data-driven", "linear", "full", "the whole LLM tuned on the instruction data (the survey's "
                                                     "data-driven family; e.g. LLaVA's second stage)"),
)


@dataclass(frozen=True)
class CompareConfig:
    """The budget every method gets. ``CompareConfig.full()`` fits 6 methods × 3 rates × 2 seeds in 30 minutes on 2
    CPU cores (tiny profile); ``CompareConfig.quick()`` runs the same comparison in CI time."""

    steps: int = 300  # optimizer steps per training
    batch_size: int = 64
    warmup_steps: int = 30
    eval_every: int = 50  # the periodic held-out evaluation that finds the steps to ``target``
    eval_items: int = 90  # items per split in the final evaluation (the periodic one scores a third of them)
    text_items: int = 46  # held-out text→text records scored for retention (at most; fewer if the split has fewer)
    lr_factors: tuple[float, ...] = (1 / 3, 1.0, 3.0)  # the sweep, around each method's own rate
    seeds: tuple[int, ...] = (0, 1)
    records: int | None = None  # dataset size (None: the profile's)
    target: float = 0.90  # held-out exact that counts as "reached"

    @classmethod
    def full(cls) -> CompareConfig:
        return cls()

    @classmethod
    def quick(cls) -> CompareConfig:
        return cls(steps=24, batch_size=16, warmup_steps=3, eval_every=8, eval_items=12, text_items=8,
                   records=2000)

    @classmethod
    def preset(cls, name: str) -> CompareConfig:
        if name not in ("full", "quick"):
            raise ProfileError(f"unknown comparison preset {name!r}; expected 'full' or 'quick'")
        return getattr(cls, name)()


def by_name(table: tuple, names, kind: str, where: str) -> list:
    """The entries of ``table`` (each with a ``name``) that ``names`` name (None: all of them; an entry itself
    passes as it is); an unknown name, or none at all, is a ProfileError naming the known ones."""
    known = {entry.name: entry for entry in table}
    chosen = []
    for entry in table if names is None else names:
        if isinstance(entry, str):
            if entry not in known:
                raise ProfileError(f"unknown {kind} {entry!r}; the {kind}s are {sorted(known)} ({where})")
            entry = known[entry]
        chosen.append(entry)
    if not chosen:
        raise ProfileError(f"no {kind} to measure; pass some of " + ", ".join(sorted(known)))
    return chosen


def select(methods=None) -> list[Method]:
    """``Method`` objects for names (None: every one of ``METHODS``), each checked to be buildable now: a name that
    is not in ``METHODS``, or whose input side or adapter is not registered, is a ProfileError naming it."""
    chosen = by_name(METHODS, methods, "method", "compare.METHODS")
    for m in chosen:
        for part, value, table in (("input side", m.aligner, INPUT_SIDES), ("adapter", m.adapter, ADAPTERS)):
            if value not in table:
                raise ProfileError(f"method {m.name!r} needs the {part} {value!r}, which is not registered; the "
                                   f"registered ones are {sorted(table)} (aligners/__init__.py)")
    return chosen


def available() -> list[str]:
    """The names in ``METHODS`` whose input side and adapter are both registered here."""
    return [m.name for m in METHODS if m.aligner in INPUT_SIDES and m.adapter in ADAPTERS]


# ---- language retention ------------------------------------------------------------------------------------
def held_out_text() -> list[str]:
    """Plain sentences about the attribute combinations held out of the world (``world.UNSEEN``), in the forms the
    LLM read for the seen ones ("you hear a high square tone."): world text it has never read. A held-out caption
    that the pretraining text holds inside another sentence is left out: an unseen still image ("a red triangle")
    is part of seen clips' captions ("a red triangle moving left"); what remains are the unseen sounds and clips."""
    read = "\n".join(world_corpus())
    forms = {"image": ("this is {}.", "you see {}.", "a photo of {}."),
             "audio": ("this is {}.", "you hear {}.", "a recording of {}."),
             "video": ("this is {}.", "{}.")}
    lines = []
    for modality in world.MODALITIES:
        for combo in world.combinations(modality, "unseen"):
            caption = world.caption(modality, dict(zip(world.ATTRIBUTES[modality], combo)))
            if caption not in read:
                lines += [form.format(caption) for form in forms[modality]]
    return lines


@torch.no_grad()
def text_loss(model, lines: list[str]) -> float:
    """Mean next-token cross-entropy of ``model``'s LLM on plain text lines, tokenised as in the LLM's pretraining;
    an adapter that routes (MoMA) takes its text-only route, as for any instruction without media."""
    llm, tokenizer = model.llm, model.tokenizer
    device = next(llm.parameters()).device
    batch = tokenizer(lines, padding=True, return_tensors="pt").to(device)
    with model.routing([Example([], None, -1, [], []) for _ in lines]):
        logits = llm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    targets = batch["input_ids"][:, 1:].masked_fill(batch["attention_mask"][:, 1:] == 0, -100)
    return round(F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=-100).item(), 4)


def _text_records(root: Path, n: int) -> list:
    return [r for r in read_records(root, split="val") if r.pair == "text->text"][:n]


def retention(model, root: Path, profile: Profile, n: int) -> dict:
    """Held-out text loss and held-out text→text exact of ``model``'s LLM as it is (its adapter active)."""
    records = _text_records(root, n)
    exact = summarise(records, answer(model, records, root, profile))["overall"]["exact"] if records else None
    return {"text_loss": text_loss(model, held_out_text()), "text_exact": exact}


def base_retention(profile: Profile, root: Path, seed: int, n: int) -> dict:
    """``retention`` of the base LLM: a fresh ModaVerse model with its LoRA switched off (peft's
    ``disable_adapter``), which is the pretrained LLM itself on text without media."""
    model = build_model(profile.with_(aligner="linear", adapter="lora"), seed).to(profile.device)
    with model.llm.disable_adapter():
        return retention(model, root, profile, n)


# ---- peak memory ---------------------------------------------------------------------------------------------
def _reset_peak() -> None:
    """Start a new peak: CUDA's allocator counter, or on Linux the process's peak resident set (``clear_refs``)."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not Linux: ru_maxrss below is then the process's peak since it started
        pass


def _peak_mb() -> float:
    """Peak memory since ``_reset_peak``: CUDA memory allocated on a GPU; on a CPU the resident set of the whole
    process (the frozen models and the data included, so read differences between methods, not the level)."""
    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 2**10, 1)
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1)


# ---- one training, one sweep ---------------------------------------------------------------------------------
def _reached(evals: list[dict], target: float) -> tuple[int | None, float | None]:
    """The step and training seconds of the first periodic evaluation whose held-out exact is at least ``target``."""
    hit = next((e for e in evals if e.get("val_exact") is not None and e["val_exact"] >= target), None)
    return (hit["step"], hit["seconds"]) if hit else (None, None)


def train_one(method: Method, profile: Profile, root: Path, seed: int, lr: float, config: CompareConfig,
              out_dir: Path, progress: bool = False) -> dict:
    """Train ``method`` once and measure it: one run's record (its loss history and periodic evaluations too)."""
    p = profile.with_(aligner=method.aligner, adapter=method.adapter)
    train = TrainConfig.from_profile(p, data_dir=root, out_dir=out_dir, seed=seed, steps=config.steps,
                                     batch_size=config.batch_size, lr=lr, warmup_steps=config.warmup_steps,
                                     eval_every=config.eval_every, eval_items=config.eval_items, resume=False,
                                     progress=progress)
    _reset_peak()
    result = align_train(train)
    peak = _peak_mb()
    model = result.model
    counts = model.parameter_counts()
    step, seconds = _reached(result.evals, config.target)
    split, pairs = result.metrics["per_split"], result.metrics["per_split_pair"]
    run = {"seed": seed, "lr": lr, "steps": result.steps, "train_seconds": result.seconds, "peak_memory_mb": peak,
           "trainable_parameters": sum(q.numel() for q in model.parameters() if q.requires_grad),
           "total_parameters": counts["total"], "parameters": counts, "steps_to_target": step,
           "seconds_to_target": seconds}
    for s in SPLITS:
        run[f"{s}_exact"], run[f"{s}_routing"] = split[s]["exact"], split[s]["routing"]
    run["per_pair"] = {s: {pair: {"exact": v["exact"], "routing": v["routing"]} for pair, v in pairs[s].items()}
                       for s in SPLITS if s in pairs}
    after = retention(model, root, p, config.text_items)
    run["text_loss_after"], run["text_exact_after"] = after["text_loss"], after["text_exact"]
    run["history"], run["evals"] = result.history, result.evals
    return run


#: Summarised over seeds: mean and worst seed (the lowest score; for a cost the highest).
HIGHER = ("val_exact", "val_routing", "unseen_exact", "unseen_routing", "phrasing_exact", "phrasing_routing",
          "text_exact_after")
LOWER = ("train_seconds", "peak_memory_mb", "text_loss_after", "steps_to_target", "seconds_to_target")


def summary(runs: list[dict]) -> dict:
    """Mean and worst seed of every score and cost; a step or time to the target is None (worst) when a seed never
    got there, and its mean is over the seeds that did (``reached`` counts them)."""
    return {"reached": sum(r["steps_to_target"] is not None for r in runs), **mean_and_worst(runs, HIGHER, LOWER)}


def mean_and_worst(runs: list[dict], higher: tuple, lower: tuple) -> dict:
    """``key`` and ``key_worst`` for each key: the mean over the runs that have it, and the worst run (the lowest
    of ``higher``, the highest of ``lower``; None when some run has no value)."""
    out = {}
    for key in higher + lower:
        values = [r[key] for r in runs if r[key] is not None]
        out[key] = round(sum(values) / len(values), 4) if values else None
        missing = len(values) < len(runs)
        out[f"{key}_worst"] = None if missing or not values else (min(values) if key in higher else max(values))
    return out


def run(profile: str | Profile = "tiny", methods=None, config: CompareConfig | None = None,
            data_dir: str | Path | None = None, progress: bool = True) -> dict:
    """Train every method at every rate of its sweep from every seed; one object per method under ``"methods"``.

    ``methods``: names from ``METHODS`` or ``Method`` objects (None: all of them; an unregistered part is an error
    before anything trains). ``data_dir``: one dataset for every seed instead of each seed's own (tests).
    """
    p, config = get_profile(profile), config or CompareConfig.full()
    chosen = select(methods)
    began = time.perf_counter()
    roots = {s: Path(data_dir) if data_dir else default_dataset(p, s, config.records) for s in config.seeds}
    before = {s: base_retention(p, roots[s], s, config.text_items) for s in config.seeds}
    out = []
    with tempfile.TemporaryDirectory(prefix="modaverse-compare-") as tmp:
        for method in chosen:
            centre = p.train.lr * method.lr_scale
            lrs = [float(f"{centre * f:.3g}") for f in config.lr_factors]
            sweep = []
            for lr in lrs:
                runs = []
                for seed in config.seeds:
                    if progress:
                        print(f"compare: {method.name} lr {lr:g} seed {seed}", file=sys.stderr, flush=True)
                    folder = Path(tmp) / method.name / f"{lr:g}-{seed}"
                    run = train_one(method, p, roots[seed], seed, lr, config, folder)
                    run["text_loss_before"], run["text_exact_before"] = (before[seed]["text_loss"],
                                                                         before[seed]["text_exact"])
                    runs.append(run)
                sweep.append({"lr": lr, **summary(runs), "runs": runs})
            best = max(sweep, key=lambda s: s["val_exact"] if s["val_exact"] is not None else -1.0)
            first = sweep[0]["runs"][0]
            out.append({**{k: v for k, v in asdict(method).items()},
                        "trainable_parameters": first["trainable_parameters"],
                        "total_parameters": first["total_parameters"], "parameters": first["parameters"], "lrs": lrs,
                        "best_lr": best["lr"],
                        "best": {k: v for k, v in best.items() if k != "runs"}, "sweep": sweep})
    return {"profile": p.name, "config": asdict(config), "methods": out,
            "text_before": {str(s): v for s, v in before.items()},
            "seconds": round(time.perf_counter() - began, 1), "threads": _training_threads(p)}


def _training_threads(profile: Profile) -> int:
    with zoo.fixed_threads(profile.train.threads if profile.device == "cpu" else 0):
        return torch.get_num_threads()


def find(result: dict, family: str) -> dict | None:
    """The method of ``family`` in a ``run`` result; None when the run left it out."""
    return next((m for m in result["methods"] if m["family"] == family), None)


def best_curve(method: dict) -> tuple[list, list]:
    """(loss history, periodic evaluations) of a method's first seed at its best rate: its training curve."""
    run = next(s for s in method["sweep"] if s["lr"] == method["best_lr"])["runs"][0]
    return run["history"], run["evals"]


def parameter_rows(method: dict) -> list[dict]:
    """A method's parameters by part (``ModaVerseLite.parameter_counts``) and each part's share of the total."""
    counts = method["parameters"]
    return [{"part": part, "parameters": n, "share": f"{100 * n / counts['total']:.2f} %"}
            for part, n in counts.items()]


def without_curves(result: dict) -> dict:
    """The comparison without each run's loss history (the command line prints this)."""
    methods = [{**m, "sweep": [{**s, "runs": [{k: v for k, v in r.items() if k != "history"} for r in s["runs"]]}
                               for s in m["sweep"]]} for m in result["methods"]]
    return {**result, "methods": methods}


def table(result: dict) -> list[dict]:
    """One row per method at its best rate (mean over seeds, worst seed beside it): the notebook's and README's
    table."""
    rows = []
    for m in result["methods"]:
        b = m["best"]
        rows.append({"method": m["name"], "family": m["family"], "trainable": m["trainable_parameters"],
                     "total": m["total_parameters"], "best lr": m["best_lr"],
                     **{f"{name} exact (worst seed)": f"{_fmt(b[f'{s}_exact'])} ({_fmt(b[f'{s}_exact_worst'])})"
                        for s, name in SPLITS.items()},
                     "held-out routing": b["val_routing"], "train s": b["train_seconds"],
                     "peak MB": b["peak_memory_mb"],
                     f"steps to {result['config']['target']:.2f}": b["steps_to_target"],
                     "seeds reached": f"{b['reached']}/{len(result['config']['seeds'])}",
                     "text loss before → after": f"{_fmt(_mean_before(m, 'text_loss'))} → "
                                                 f"{_fmt(b['text_loss_after'])}",
                     "text→text exact before → after": f"{_fmt(_mean_before(m, 'text_exact'))} → "
                                                       f"{_fmt(b['text_exact_after'])}"})
    return rows


def sweep_table(result: dict) -> list[dict]:
    """Every rate of every method's sweep: mean and worst seed of held-out exact, and the chosen one marked."""
    return [{"method": m["name"], "lr": s["lr"], "best": "✓" if s["lr"] == m["best_lr"] else "",
             "held-out exact": s["val_exact"], "worst seed": s["val_exact_worst"], "unseen exact": s["unseen_exact"],
             "phrasing exact": s["phrasing_exact"], "train s": s["train_seconds"]}
            for m in result["methods"] for s in m["sweep"]]


def _mean_before(method: dict, key: str) -> float | None:
    values = [r[f"{key}_before"] for r in method["sweep"][0]["runs"] if r[f"{key}_before"] is not None]
    return sum(values) / len(values) if values else None


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


__all__ = ["METHODS", "CompareConfig", "Method", "available", "best_curve", "find", "held_out_text",
           "parameter_rows", "run", "select", "sweep_table", "table", "text_loss", "without_curves"]
