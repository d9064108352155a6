"""The paper's claim, measured in miniature: ``python -m modaverse_lite bench claim --json``.

ModaVerse claims that aligning the LLM's output with the generators' input *in words* (a meta-response), in one
training stage, does what NExT-GPT's latent alignment does in three, at comparable quality, with much less data and
training time. Two factors are mixed in that claim: the output design (meta-response or latent) and the schedule
(one stage or three). Four arms separate them (``ARMS``):

=============  ==============================  ==========================================
arm            output                          schedule (``schedules.py``)
=============  ==============================  ==========================================
modaverse      meta-response                   one stage
nextgpt        signal tokens + output proj.    three stages (encoding, decoding, instructions)
meta-three     meta-response                   three stages
latent-one     signal tokens + output proj.    one stage
=============  ==============================  ==========================================

Every arm gets the same treatment (``ClaimConfig``), as in ``compare.py``: the same datasets and seeds, the same
instruction steps and batch size (the three-stage arms get their first two stages *on top*, as NExT-GPT does), the
same learning-rate sweep around the same rate (every stage of a run uses its rate; the sweep trains from
``sweep_seeds`` and chooses the rate, then the chosen rate trains from every one of ``seeds``, and every reported
figure is the mean over ``seeds`` with the worst seed beside it), the same evaluation. The score is
the **round trip** (``roundtrip.py``): instruction → answer → generator → file → frozen encoder → attribute probes
→ does the file show what was asked? The latent arms' answers are decoded to the nearest world caption first
(``latent.py``: the tiny pipelines are untrained), then drawn by the same world renderer. The world renderers
draw in every profile (on the gpu profile too, whose latent targets are the real generators' text encodings): the
claim is about the LLM's side of the road, and a renderer that draws exactly what a caption says scores both
designs alike.

Per arm: round trip and routing per output modality on held-out media (``test``) and on unseen combinations,
trainable parameters per stage, training seconds (every stage), seconds until the periodic round trip first reaches
``target``, and **data efficiency**: the final round trip when the instruction data is cut to ``data_sizes``
records, with every data item counted (stage-1 captions and stage-2 caption pairs too).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import meta, zoo
from .assistant import Assistant
from .compare import _training_threads, by_name, mean_and_worst
from .dataset import default_dataset
from .dispatch import registry_for
from .encode import record_features
from .errors import ProfileError
from .evaluate import attribute_probes
from .latent import Conditioning, build_latent_model, conditioning_checkpoint, signal_tokens, world_captions
from .model import build_model
from .profiles import Profile, get_profile
from .records import read_records
from .roundtrip import roundtrip_eval
from .schedules import one_stage, parameter_groups, run_schedule, three_stages

MEDIA = meta.MEDIA


@dataclass(frozen=True)
class Arm:
    """One arm: the output design (``"meta"`` or ``"latent"``), the schedule (``"one"`` or ``"three"``) and what
    it stands for."""

    name: str
    output: str
    schedule: str
    label: str


ARMS: tuple[Arm, ...] = (
    Arm("modaverse", "meta", "one", "ModaVerse: meta-response, one stage"),
    Arm("nextgpt", "latent", "three", "NExT-GPT: signal tokens and output projections, three stages"),
    Arm("meta-three", "meta", "three", "meta-response trained in NExT-GPT's three stages"),
    Arm("latent-one", "latent", "one", "NExT-GPT's latent output trained in one stage"),
)


@dataclass(frozen=True)
class ClaimConfig:
    """The budget of every arm. ``full()`` fits 4 arms × (3 rates from the sweep's seed + the best rate from the
    other) plus 2 data cuts × 2 seeds, 32 trainings, in 30 minutes on 2 CPU cores (tiny profile; docs/NOTES.md);
    ``quick()`` runs the same measurement in CI time."""

    steps: int = 225  # instruction steps: the single stage, or stage 3
    caption_steps: int = 72  # NExT-GPT's stage 1 (encoding side)
    decoding_steps: int = 180  # NExT-GPT's stage 2 (decoding side)
    batch_size: int = 64
    warmup_steps: int = 22
    eval_every: int = 75  # the periodic round trip that finds the seconds to ``target``
    eval_items: int = 20  # records per output modality and split in the final round trip
    periodic_items: int = 8  # records per output modality in the periodic one (held-out split only)
    lr_factors: tuple[float, ...] = (1 / 3, 1.0, 3.0)  # the sweep, around the profile's rate, for every arm
    sweep_seeds: tuple[int, ...] = (0,)  # the seeds every rate of the sweep trains from (they choose the rate)
    seeds: tuple[int, ...] = (0, 1)  # the seeds of every reported figure: the best rate and the data cuts
    data_sizes: tuple[int, ...] = (1000, 3000)  # instruction records of the data cuts (besides the whole split)
    records: int | None = None  # dataset size (None: the profile's)
    target: float = 0.90  # round trip that counts as "reached"

    @classmethod
    def full(cls) -> ClaimConfig:
        return cls()

    @classmethod
    def quick(cls) -> ClaimConfig:
        return cls(steps=24, caption_steps=8, decoding_steps=16, batch_size=16, warmup_steps=3, eval_every=12,
                   eval_items=4, periodic_items=2, lr_factors=(1.0,), seeds=(0,), data_sizes=(200,), records=2000)

    def __post_init__(self):
        if not set(self.sweep_seeds) <= set(self.seeds):
            raise ProfileError(f"sweep_seeds {self.sweep_seeds} must be some of seeds {self.seeds}")

    @classmethod
    def preset(cls, name: str) -> ClaimConfig:
        if name not in ("full", "quick"):
            raise ProfileError(f"unknown claim preset {name!r}; expected 'full' or 'quick'")
        return getattr(cls, name)()


def select(arms=None) -> list[Arm]:
    """``Arm`` objects for names (None: all of ``ARMS``); an unknown name is a ProfileError naming the known ones."""
    return by_name(ARMS, arms, "arm", "claim.ARMS")


def stages(arm: Arm, config: ClaimConfig):
    """The arm's schedule at the config's budget."""
    if arm.schedule == "three":
        return three_stages(arm.output, config.steps, config.caption_steps, config.decoding_steps)
    return one_stage(config.steps)


def _mean_roundtrip(result: dict, split: str | None = None) -> float | None:
    parts = [result[m] if split is None else result[m].get(split) for m in MEDIA]
    values = [p["accuracy"] for p in parts if p and p.get("accuracy") is not None]
    return round(sum(values) / len(values), 4) if values else None


def train_one(arm: Arm, profile: Profile, root: Path, data: tuple, seed: int, lr: float, config: ClaimConfig,
              probes, conditioning: Conditioning, periodic_eval: bool = True, progress: bool = False) -> dict:
    """Train ``arm`` once on ``data`` (training records, their feature rows and the feature tables) and measure it
    (``periodic_eval``: the round trip every ``eval_every`` steps too, which finds the seconds to ``target``)."""
    records, rows, features = data
    torch.manual_seed(seed)
    model = (build_latent_model(profile, seed, conditioning) if arm.output == "latent"
             else build_model(profile, seed)).to(profile.device)
    # the world renderers draw for every arm and every profile: the claim is about the LLM's side of the road
    assistant = Assistant.from_model(model, profile, root, registry=registry_for("tiny"))

    def periodic() -> dict:
        scores = roundtrip_eval(assistant, root, split="test", n_per_modality=config.periodic_items, seed=seed,
                                unseen=False, probes=probes)
        return {"roundtrip": _mean_roundtrip(scores), **{m: scores[m]["accuracy"] for m in MEDIA}}

    result = run_schedule(model, stages(arm, config), records, rows, features, lr, config.batch_size,
                          config.warmup_steps, seed, profile.train.tag_weight, profile.train.max_grad_norm,
                          profile.train.threads if profile.device == "cpu" else 0,
                          periodic if periodic_eval else None, config.eval_every, progress)
    with zoo.fixed_threads(profile.train.threads if profile.device == "cpu" else 0):
        final = roundtrip_eval(assistant, root, split="test", n_per_modality=config.eval_items, seed=seed,
                               unseen=True, probes=probes)
    hit = next((e for e in result.evals if e["roundtrip"] is not None and e["roundtrip"] >= config.target), None)
    groups = parameter_groups(model)  # every tensor some stage trains, once
    trained = {id(q): q.numel() for stage in stages(arm, config) for g in stage.trains for q in groups[g]}
    run = {"seed": seed, "lr": lr, "records": len(records), "data": sum(result.examples.values()),
           "data_per_stage": result.examples, "train_seconds": result.total_seconds,
           "seconds_per_stage": result.seconds, "trainable_per_stage": result.trainable,
           "groups_per_stage": {stage.name: [g for g in stage.trains if groups[g]] for stage in stages(arm, config)},
           "trainable_parameters": sum(trained.values()),
           "roundtrip": _mean_roundtrip(final), "unseen_roundtrip": _mean_roundtrip(final, "unseen"),
           "seconds_to_target": hit["seconds"] if hit else None, "steps_to_target": hit["step"] if hit else None,
           "evals": result.evals, "history": result.history}
    for m in MEDIA:
        run[f"{m}_roundtrip"], run[f"{m}_routed"] = final[m]["accuracy"], final[m]["routed"]
        run[f"{m}_unseen_roundtrip"] = final[m]["unseen"]["accuracy"]
        run[f"{m}_unseen_routed"] = final[m]["unseen"]["routed"]
    run["routed"] = round(sum(final[m]["routed"] for m in MEDIA) / len(MEDIA), 4)
    run["unseen_routed"] = round(sum(final[m]["unseen"]["routed"] for m in MEDIA) / len(MEDIA), 4)
    return run


HIGHER = ("roundtrip", "unseen_roundtrip", "routed", "unseen_routed",
          *(f"{m}_{k}" for m in MEDIA for k in ("roundtrip", "routed", "unseen_roundtrip", "unseen_routed")))
LOWER = ("train_seconds", "seconds_to_target", "steps_to_target")


def summary(runs: list[dict]) -> dict:
    """Mean and worst seed of every score and cost (a time to the target: None when a seed never got there)."""
    return {"reached": sum(r["seconds_to_target"] is not None for r in runs), "records": runs[0]["records"],
            "data": runs[0]["data"], **mean_and_worst(runs, HIGHER, LOWER)}


def _training_data(root: Path, profile: Profile, n: int | None, seed: int, cache: dict) -> tuple:
    """The first ``n`` training records of a seeded shuffle (None: all), their feature rows, the feature tables."""
    if root not in cache:
        train = [r for r in read_records(root) if r.split == "train"]
        features, rows = record_features(train, root, profile, progress=False)
        cache[root] = (train, rows, features)
    train, rows, features = cache[root]
    if n is None or n >= len(train):
        return train, rows, features
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n].sort().values.tolist()
    return [train[i] for i in order], [rows[i] for i in order], features


def run(profile: str | Profile = "tiny", arms=None, config: ClaimConfig | None = None, progress: bool = True
        ) -> dict:
    """Every arm at every rate of the sweep (from ``sweep_seeds``) on the whole training split, its best rate from
    the other ``seeds`` too, then the best rate on each data cut from every seed; one object per arm under
    ``"arms"``. The best rate is the one with the best mean round trip over the sweep seeds (ties: the lower)."""
    p, config = get_profile(profile), config or ClaimConfig.full()
    chosen = select(arms)
    began = time.perf_counter()
    roots = {s: default_dataset(p, s, config.records) for s in config.seeds}
    probes = attribute_probes(p, seed=0)  # fitted on world media through this profile's frozen encoders
    conditioning = Conditioning(p)
    cache: dict = {}
    lrs = [float(f"{p.train.lr * f:.3g}") for f in config.lr_factors]
    out = []
    for arm in chosen:
        def train(seed: int, lr: float, n: int | None = None, arm: Arm = arm) -> dict:
            if progress:
                print(f"claim: {arm.name} lr {lr:g} seed {seed}" + (f", {n} records" if n else ""),
                      file=sys.stderr, flush=True)
            data = _training_data(roots[seed], p, n, seed, cache)
            return train_one(arm, p, roots[seed], data, seed, lr, config, probes, conditioning,
                             periodic_eval=n is None)

        sweep = [{"lr": lr, "runs": [train(seed, lr) for seed in config.sweep_seeds]} for lr in lrs]
        sweep = [{**s, **summary(s["runs"])} for s in sweep]
        best = max(sweep, key=lambda s: s["roundtrip"] if s["roundtrip"] is not None else -1.0)
        best["runs"] += [train(seed, best["lr"]) for seed in config.seeds if seed not in config.sweep_seeds]
        best.update(summary(best["runs"]))  # the chosen rate, over every seed
        cuts = []
        for n in config.data_sizes:
            runs = [train(seed, best["lr"], n) for seed in config.seeds]
            cuts.append({**summary(runs), "runs": runs})
        first = best["runs"][0]
        out.append({**asdict(arm), "stages": [asdict(s) for s in stages(arm, config)],
                    "trainable_parameters": first["trainable_parameters"],
                    "trainable_per_stage": first["trainable_per_stage"], "lrs": lrs, "best_lr": best["lr"],
                    "best": {k: v for k, v in best.items() if k != "runs"}, "sweep": sweep,
                    "data": [*cuts, {k: v for k, v in best.items() if k not in ("runs", "lr")}],
                    "data_runs": [c["runs"] for c in cuts]})
    return {"profile": p.name, "config": asdict(config), "arms": out,
            "seconds": round(time.perf_counter() - began, 1), "threads": _training_threads(p)}


# ---- what the latent side aims at (notebook 05) --------------------------------------------------------------------
def latent_targets(profile: str | Profile = "tiny", conditioning: Conditioning | None = None) -> list[dict]:
    """One row per output modality: the generator whose text encoder sets the latent target, the signal tokens
    and the conditioning's parts and shapes."""
    conditioning = conditioning or Conditioning(profile)
    return [{"output": m, "generator whose text encoder sets the target": conditioning_checkpoint(profile, m),
             "signal tokens": " ".join(signal_tokens(m)),
             "conditioning": ", ".join(f"{k} {tuple(v)}" for k, v in conditioning.shapes(m).items())}
            for m in MEDIA]


def drawn_from_conditioning(profile: str | Profile = "tiny", modality: str = "image", index: int = 0,
                            conditioning: Conditioning | None = None, steps: int = 2) -> tuple[str, object]:
    """(caption, output): world caption ``index`` of ``modality``, drawn by the profile's diffusers pipeline from
    its conditioning alone (``prompt_embeds``, no prompt): how a predicted conditioning reaches a generator."""
    conditioning = conditioning or Conditioning(profile)
    caption = world_captions(modality)[index]
    pipe = conditioning.pipeline(modality)
    extra = {"num_frames": get_profile(profile).video_frames} if modality == "video" else {}
    out = pipe(**Conditioning.pipeline_kwargs(conditioning(modality, [caption])), num_inference_steps=steps,
               output_type="np", **extra)
    return caption, (out.audios if modality == "audio" else out.frames if modality == "video" else out.images)[0]


# ---- tables and curves for the notebook and the README ------------------------------------------------------------
def find(result: dict, name: str) -> dict | None:
    """The arm called ``name`` in a ``run`` result; None when the run left it out."""
    return next((a for a in result["arms"] if a["name"] == name), None)


def without_curves(result: dict) -> dict:
    """The result without loss histories (the command line prints this)."""
    def strip(runs):
        return [{k: v for k, v in r.items() if k != "history"} for r in runs]

    arms = [{**a, "sweep": [{**s, "runs": strip(s["runs"])} for s in a["sweep"]],
             "data_runs": [strip(runs) for runs in a["data_runs"]]} for a in result["arms"]]
    return {**result, "arms": arms}


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _pair(summary: dict, key: str) -> str:
    return f"{_fmt(summary[key])} ({_fmt(summary[f'{key}_worst'])})"


def table(result: dict) -> list[dict]:
    """One row per arm at its best rate: round trip per modality and on unseen combinations, routing, parameters,
    seconds (mean, worst seed in brackets)."""
    rows = []
    for a in result["arms"]:
        b = a["best"]
        rows.append({"arm": a["name"], "output": a["output"], "stages": len(a["stages"]),
                     "trainable": a["trainable_parameters"], "best lr": a["best_lr"],
                     "round trip (worst seed)": _pair(b, "roundtrip"),
                     **{f"{m}": _pair(b, f"{m}_roundtrip") for m in MEDIA},
                     "unseen round trip": _pair(b, "unseen_roundtrip"),
                     "routing": _fmt(b["routed"]), "unseen routing": _fmt(b["unseen_routed"]),
                     "train s": b["train_seconds"],
                     f"s to {result['config']['target']:.2f}": b["seconds_to_target"],
                     "seeds reached": f"{b['reached']}/{len(result['config']['seeds'])}",
                     "data items": b["data"]})
    return rows


def sweep_table(result: dict) -> list[dict]:
    """Every rate of every arm's sweep, the chosen one marked."""
    return [{"arm": a["name"], "lr": s["lr"], "best": "✓" if s["lr"] == a["best_lr"] else "",
             "seeds": "/".join(str(r["seed"]) for r in s["runs"]),
             "round trip": s["roundtrip"], "worst seed": s["roundtrip_worst"],
             "unseen round trip": s["unseen_roundtrip"], "train s": s["train_seconds"]}
            for a in result["arms"] for s in a["sweep"]]


def data_table(result: dict) -> list[dict]:
    """The data cuts: instruction records, every data item counted, round trip (worst seed)."""
    return [{"arm": a["name"], "instruction records": d["records"], "data items (all stages)": d["data"],
             "round trip (worst seed)": _pair(d, "roundtrip"), "unseen round trip": _pair(d, "unseen_roundtrip")}
            for a in result["arms"] for d in a["data"]]


def stage_table(result: dict) -> list[dict]:
    """What trains in each stage of each arm, on what data, for how many steps, and its seconds (first seed)."""
    rows = []
    for a in result["arms"]:
        first = next(s for s in a["sweep"] if s["lr"] == a["best_lr"])["runs"][0]
        for s in a["stages"]:
            rows.append({"arm": a["name"], "stage": s["name"], "data": s["data"],
                         "data items": first["data_per_stage"][s["name"]],
                         "trains": " + ".join(first["groups_per_stage"][s["name"]]),
                         "trainable": first["trainable_per_stage"][s["name"]], "steps": s["steps"],
                         "seconds": first["seconds_per_stage"][s["name"]]})
    return rows


#: The claim and its two factors, each as (question, arm A, arm B): A differs from B in one thing only, but for
#: the first row, which is the paper's comparison itself.
CONTRASTS = (
    ("the claim: ModaVerse against NExT-GPT", "modaverse", "nextgpt"),
    ("the output design alone, one stage", "modaverse", "latent-one"),
    ("the output design alone, three stages", "meta-three", "nextgpt"),
    ("the schedule alone, meta-response", "modaverse", "meta-three"),
    ("the schedule alone, latent output", "latent-one", "nextgpt"),
)


def contrasts(result: dict) -> list[dict]:
    """``CONTRASTS`` read off a result (rows whose arms the run left out are skipped): for A and B at their best
    rates, round trip and unseen round trip (mean over seeds), training seconds, seconds to the target and data
    items, each as "A | B"; and the round trip of both on the smallest data cut."""
    rows = []
    for question, x, y in CONTRASTS:
        a, b = find(result, x), find(result, y)
        if a is None or b is None:
            continue
        small = a["data"][0], b["data"][0]

        def both(key: str, score: bool = False, pair: tuple = (a["best"], b["best"])) -> str:
            cells = ["–" if s[key] is None else _fmt(s[key]) if score else f"{s[key]:g}" for s in pair]
            return " | ".join(cells)

        rows.append({"question": question, "A | B": f"{x} | {y}", "round trip": both("roundtrip", True),
                     "unseen round trip": both("unseen_roundtrip", True), "train s": both("train_seconds"),
                     f"s to {result['config']['target']:.2f}": both("seconds_to_target"),
                     "data items": both("data"),
                     f"round trip, {small[0]['records']} records": both("roundtrip", True, small)})
    return rows


__all__ = ["ARMS", "Arm", "CONTRASTS", "ClaimConfig", "contrasts", "data_table", "drawn_from_conditioning", "find",
           "latent_targets", "run", "select",
           "stage_table", "stages", "summary", "sweep_table", "table", "train_one", "without_curves"]
