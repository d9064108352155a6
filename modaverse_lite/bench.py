"""Benchmarks anyone can re-run: ``python -m modaverse_lite bench align|seeds|compare|claim --json``.

``bench_align`` measures training throughput, in one process, on the same model, batches and machine, of:

* **ours** — every medium encoded once (cached on disk), every instruction tokenised once; a step gathers rows,
  builds the batch's input embeddings at once (one lookup, one projection call per modality) and runs the loss
  at the target positions only (``ModaVerseLite.loss``).
* **naive** — a loop shaped like the paper's reference code (``ModaVerse.get_training_inputs`` in
  xinke-wang/ModaVerse): inside every step, per sample, load the medium, encode it, tokenise the instruction and
  build that sample's input embeddings; then pad, stack, and take the LLM's own loss (``labels=``, logits at
  every position). ``ratio`` is ours against this loop.
* **per_step_encoding** — the naive loop's per-sample loading, encoding and tokenising, followed by our step.
  ``ratio_caching_alone`` is ours against it: what encoding once buys by itself, ``1 + encode / step``.

``ms_per_sample`` splits each loop's time into its stages, so each part of a ratio can be read off. The three
loops take turns batch by batch, ``rounds`` times over the same batches.

How close our step comes to what the machine can do (``_step_flops``, ``matmul_flops_per_s``): torch's
``FlopCounterMode`` counts the FLOPs of forward + backward of our loss on every batch (matrix products and
attention, which is where the FLOPs are; element-wise work and the optimiser are not counted);
``ours_flops_per_s`` is that count over the time our loop took, ``matmul_flops_per_s`` a large dense ``torch.mm``
timed in the same run, under the same autocast, and ``ours_flops_ratio`` the one over the other.

``bench_seeds`` trains the same recipe from several seeds (each with its own dataset) and reports the spread of
the held-out and unseen-combination scores: one seed's figure on a split of a few hundred items is not a result.

* ``bench_compare`` — the alignment families on equal terms (``bench compare``; ``compare.py`` says how).
* ``bench_claim`` — the paper's claim: one stage against NExT-GPT's three (``bench claim``; ``claim.py``).
* ``bench_dispatch`` — the dispatcher's own cost per request (``bench dispatch``): parsing the meta-response and
  routing it through the registry to do-nothing generators, against a 1 ms budget.
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.flop_counter import FlopCounterMode

from . import claim, compare, meta, zoo
from .dataset import default_dataset
from .dispatch import Registry
from .encode import load_encoder, record_features
from .files import cache_dir
from .generators import DEFAULT_SAMPLE_RATE, GENERATED, Generator
from .model import build_model
from .profiles import Profile, get_profile
from .records import read_records
from .train import TrainConfig, align_train, mixed_precision


def _peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def _timed(model, batches, loops: dict, rounds: int, accelerator) -> dict[str, dict[str, float]]:
    """Seconds spent in each stage of each loop over ``rounds`` passes of one optimiser step per batch.

    ``loops`` maps a loop's name to its stages, ``(name, function)`` pairs: the first function gets the batch,
    each next one the previous one's result, and the last returns the loss (its time includes backward and the
    optimiser step). The loops take turns batch by batch, so a slow spell of the machine hits them alike. Each
    loop's first step runs once untimed (lazy initialisation, allocator warm-up). Stages run under the
    accelerator's autocast, as in training; on a GPU the clock waits for the GPU at the end of each stage.
    """
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    seconds = {loop: dict.fromkeys((name for name, _ in stages), 0.0) for loop, stages in loops.items()}

    def step(loop, batch, clock):
        value = batch
        for i, (name, function) in enumerate(loops[loop]):
            began = time.perf_counter()
            with accelerator.autocast():
                value = function(value)
            if i == len(loops[loop]) - 1:
                optimizer.zero_grad()
                value.backward()
                optimizer.step()
            if accelerator.device.type == "cuda":
                torch.cuda.synchronize()
            clock[name] += time.perf_counter() - began

    for loop in loops:
        step(loop, batches[0], dict.fromkeys(seconds[loop], 0.0))
    for _ in range(rounds):
        for batch in batches:
            for loop in loops:
                step(loop, batch, seconds[loop])
    return seconds


def _one_by_one(model, encoders, root: Path, records) -> list:
    """The reference code's way, inside every step: per record, load and encode its medium and tokenise it.
    One ``(example, {modality: [1, ...] features})`` pair per record."""
    samples = []
    for r in records:
        modality = r.inputs[0] if r.inputs else None
        features = {}
        if modality:
            encoder = encoders[modality]
            features[modality] = encoder.embed([encoder.load(r.media_path(root, modality))])
        samples.append((model.tokenize(r.instruction, modality, 0 if modality else -1, r.response()), features))
    return samples


def _merged(samples):
    """Per-sample (example, features) pairs → one batch: examples pointing into feature tables per modality."""
    examples, tables = [], {}
    for example, features in samples:
        if example.modality is not None:
            table = tables.setdefault(example.modality, [])
            example = dataclasses.replace(example, row=len(table))
            table.append(features[example.modality])
        examples.append(example)
    return examples, {m: torch.cat(rows) for m, rows in tables.items()}


def _reference_inputs(model, samples) -> dict:
    """The reference code's batch: each sample's input embeddings built on their own, then right-padded and
    stacked, with labels for the LLM's own loss."""
    built = [model.build_inputs([example], features) for example, features in samples]

    def stacked(part: str, value: int = 0):
        return pad_sequence([getattr(b, part)[0] for b in built], batch_first=True, padding_value=value)

    return {"inputs_embeds": stacked("inputs_embeds"), "attention_mask": stacked("attention_mask"),
            "labels": stacked("labels", value=-100)}


def _step_flops(model, examples: list, features: dict, accelerator) -> int:
    """FLOPs of one step of our loop (forward + backward of ``model.loss``), counted by torch, not estimated.

    The gradients it leaves are cleared: the count changes nothing that a timed loop sees."""
    with FlopCounterMode(display=False) as counter:
        with accelerator.autocast():
            loss = model.loss(examples, features)  # the tag weight changes no matrix product
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def matmul_flops_per_s(accelerator, n: int = 2048, repeats: int = 10) -> float:
    """The machine's dense-matmul FLOP/s: an ``n``×``n`` fp32 ``torch.mm`` (autocast may lower it, as in
    training), after 3 untimed warm-up products; the best of ``repeats`` timed ones, ``2 n³`` FLOPs each."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=generator).to(accelerator.device) for _ in range(2))
    best = float("inf")
    with accelerator.autocast():
        for i in range(3 + repeats):
            began = time.perf_counter()
            torch.mm(a, b)
            if accelerator.device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 3:
                best = min(best, time.perf_counter() - began)
    return 2 * n**3 / best


def _flops(model, step_examples: list[list], features: dict, ours_seconds: float, rounds: int,
           accelerator) -> dict:
    """The FLOP/s fields of ``bench_align``: our loop's achieved rate, the machine's matmul rate, their ratio."""
    per_pass = sum(_step_flops(model, examples, features, accelerator) for examples in step_examples)
    achieved = rounds * per_pass / ours_seconds
    machine = matmul_flops_per_s(accelerator)
    return {"ours_flops_per_step": round(per_pass / len(step_examples)), "ours_flops_per_s": round(achieved, -6),
            "matmul_flops_per_s": round(machine, -6), "ours_flops_ratio": round(achieved / machine, 4)}


def bench_align(profile: str | Profile = "tiny", steps: int = 20, batch_size: int | None = None, seed: int = 0,
                data_dir: str | None = None, rounds: int = 3) -> dict:
    """``_bench_align`` with the CPU threads training uses (``profiles.TrainSettings.threads``)."""
    p = get_profile(profile)
    with zoo.fixed_threads(p.train.threads if p.device == "cpu" else 0):
        return _bench_align(p, steps, batch_size, seed, data_dir, rounds)


def _bench_align(profile: Profile, steps: int, batch_size: int | None, seed: int, data_dir: str | None,
                 rounds: int) -> dict:
    """Samples/s of our loop, the naive loop and the per-step-encoding loop, their ratios, where each loop's
    time goes (per sample and per optimizer step), the one-off encoding time, our step's FLOP/s against the
    machine's matmul FLOP/s, peak memory (RSS on a CPU, allocated CUDA memory on a GPU). Any profile:
    ``bench_align("hubshape")`` times the gpu profile's shapes on a CPU."""
    p = profile
    batch_size = batch_size or p.train.batch_size
    root = Path(data_dir) if data_dir else default_dataset(p, seed)
    train = [r for r in read_records(root) if r.split == "train"][: steps * batch_size]
    batches = [train[i:i + batch_size] for i in range(0, len(train), batch_size)]
    from accelerate import Accelerator

    accelerator = Accelerator(mixed_precision=mixed_precision())  # the device and precision training uses
    model = build_model(p, seed).to(accelerator.device)

    began = time.perf_counter()  # ours: encode every medium once (cached on disk), tokenise every record once
    features, rows = record_features(train, root, p, progress=False)
    features = {m: f.to(accelerator.device) for m, f in features.items()}
    examples = model.examples(train, rows)
    prepare = time.perf_counter() - began
    position = {id(r): i for i, r in enumerate(train)}
    encoders = {m: load_encoder(m, p) for m in ("image", "audio", "video")}

    def per_sample(batch):
        return _one_by_one(model, encoders, root, batch)

    loops = {
        "ours": [("step", lambda batch: model.loss([examples[position[id(r)]] for r in batch], features,
                                                   p.train.tag_weight))],
        "naive": [("encode_tokenise", per_sample), ("build_inputs", lambda s: _reference_inputs(model, s)),
                  ("step", lambda inputs: model.llm(**inputs).loss)],
        "per_step_encoding": [("encode_tokenise", lambda batch: _merged(per_sample(batch))),
                              ("step", lambda merged: model.loss(*merged))],
    }
    seconds = _timed(model, batches, loops, rounds, accelerator)
    samples = len(train)
    per_s = {loop: rounds * samples / sum(stages.values()) for loop, stages in seconds.items()}
    return {"profile": p.name, "steps": len(batches), "batch_size": batch_size, "samples": samples, "rounds": rounds,
            "ours_samples_per_s": round(per_s["ours"], 1), "naive_samples_per_s": round(per_s["naive"], 1),
            "ratio": round(per_s["ours"] / per_s["naive"], 2),
            "per_step_encoding_samples_per_s": round(per_s["per_step_encoding"], 1),
            "ratio_caching_alone": round(per_s["ours"] / per_s["per_step_encoding"], 2),
            "ours_prepare_s": round(prepare, 2),
            "ms_per_sample": {loop: {name: round(1000 * t / (rounds * samples), 3) for name, t in stages.items()}
                              for loop, stages in seconds.items()},
            **_flops(model, [[examples[position[id(r)]] for r in batch] for batch in batches], features,
                     sum(seconds["ours"].values()), rounds, accelerator),
            "ms_per_step": {loop: round(1000 * sum(stages.values()) / (rounds * len(batches)), 1)
                            for loop, stages in seconds.items()},  # one optimizer step of batch_size samples
            "peak_memory_mb": round(_peak_memory_mb(), 1),
            "device": accelerator.device.type, "mixed_precision": accelerator.mixed_precision,
            "threads": torch.get_num_threads()}


def bench_seeds(profile: str | Profile = "tiny", seeds: tuple[int, ...] = (0, 1, 2), steps: int | None = None,
                out_dir: str | Path | None = None, records: int | None = None, progress: bool = True) -> dict:
    """Train once per seed (fresh runs under ``out_dir``, each on the default dataset of that seed, of ``records``
    records); per-seed and summary scores for val, unseen and phrasing."""
    p = get_profile(profile)
    out_dir = Path(out_dir) if out_dir else cache_dir() / "runs" / f"bench-seeds-{p.name}"
    runs = []
    for seed in seeds:
        data = default_dataset(p, seed, records)
        result = align_train(TrainConfig.from_profile(p, data_dir=data, out_dir=out_dir / f"seed{seed}", seed=seed,
                                                      steps=steps, resume=False, progress=progress))
        split, val_pairs = result.metrics["per_split"], result.metrics["per_split_pair"]["val"]
        weakest = min(val_pairs, key=lambda pair: val_pairs[pair]["exact"])
        runs.append({"seed": seed, "train_seconds": result.seconds, "steps": result.steps,
                     "val_routing": split["val"]["routing"], "val_exact": split["val"]["exact"],
                     "val_pair_exact_min": val_pairs[weakest]["exact"], "val_weakest_pair": weakest,
                     "unseen_exact": split["unseen"]["exact"], "unseen_attributes": split["unseen"]["attributes"],
                     "phrasing_routing": split["phrasing"]["routing"], "phrasing_exact": split["phrasing"]["exact"],
                     "per_pair_exact": {s: {pair: v["exact"] for pair, v in pairs.items()}
                                        for s, pairs in result.metrics["per_split_pair"].items()},
                     **({"per_segment": result.metrics["per_segment"]} if "per_segment" in result.metrics else {})})
    summary = {}
    for key in ("val_routing", "val_exact", "val_pair_exact_min", "unseen_exact", "unseen_attributes",
                "phrasing_routing", "phrasing_exact", "train_seconds"):
        values = [r[key] for r in runs]
        summary[key] = {"mean": round(sum(values) / len(values), 4), "min": min(values), "max": max(values)}
    with zoo.fixed_threads(p.train.threads):
        threads = torch.get_num_threads()  # what training used
    return {"profile": p.name, "seeds": list(seeds), "runs": runs, "summary": summary, "threads": threads}


def bench_compare(profile: str | Profile = "tiny", methods=None, quick: bool = False, progress: bool = True) -> dict:
    """Every method of ``compare.METHODS`` (or the ones named), trained and measured on equal terms, with the
    ``quick`` or the ``full`` budget (``compare.CompareConfig``); each run's loss history left out."""
    config = compare.CompareConfig.quick() if quick else compare.CompareConfig.full()
    result = compare.without_curves(compare.run(profile, methods, config, progress=progress))
    return {**result, "preset": "quick" if quick else "full"}


def bench_claim(profile: str | Profile = "tiny", arms=None, quick: bool = False, progress: bool = True) -> dict:
    """The paper's claim: ModaVerse's single stage against NExT-GPT's three-stage latent alignment and the two
    crossings (``claim.ARMS``), with the ``quick`` or the ``full`` budget (``claim.ClaimConfig``); each run's loss
    history left out."""
    config = claim.ClaimConfig.quick() if quick else claim.ClaimConfig.full()
    result = claim.without_curves(claim.run(profile, arms, config, progress=progress))
    return {**result, "preset": "quick" if quick else "full"}


# ---- dispatch overhead ----
class _Stub(Generator):
    """A generator whose work is nothing: what is left to time is parsing and routing."""

    def __init__(self, modality: str):
        super().__init__(modality, f"stub:{modality}")
        self.sample_rate = DEFAULT_SAMPLE_RATE
        self._data = {"image": np.zeros((8, 8, 3), np.uint8), "audio": np.zeros(16, np.float32),
                      "video": np.zeros((2, 8, 8, 3), np.uint8)}[modality]

    def _generate(self, prompt: str, seed: int) -> np.ndarray:
        return self._data


def bench_dispatch(n: int = 1000) -> dict:
    """Dispatch overhead per request (parse + registry lookup + call of an already-loaded, do-nothing generator).

    The requests mix one-segment, multi-segment, malformed and free-text responses. No file is written: saving and
    generating are the generators' and media's costs, not the dispatcher's. Each figure is the best of 5 runs of
    ``n`` requests, in milliseconds per request; ``ok`` says whether the whole is under the 1 ms budget.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    registry = Registry()
    for modality in GENERATED:
        registry.register(modality, _Stub(modality))
        registry.get(modality).load()
    requests = [
        meta.format_meta("image", "a red circle"),
        meta.format_meta("audio", "a high sine tone"),
        meta.format_segments([("text", "Here is the clip you asked for."), ("video", "a blue square moving up")]),
        "modality: [image] prompt: Prompt: a green diamond",  # tolerated with notes
        "Modality: [IMAG Prompt: a red circle",  # falls back to text
        "A plain text answer without any marker.",
    ]

    parsed = [meta.parse(text).segments for text in requests]

    def parse_only(i: int) -> None:
        meta.parse(requests[i % len(requests)])

    def route_only(i: int) -> None:  # registry lookup and call, on segments parsed beforehand
        for segment in parsed[i % len(parsed)]:
            if segment.modality != "text":
                registry.get(segment.modality).generate(segment.prompt, 0)

    def both(i: int) -> None:
        for segment in meta.parse(requests[i % len(requests)]).segments:
            if segment.modality != "text":
                registry.get(segment.modality).generate(segment.prompt, 0)

    def best_ms(step: Callable[[int], None], repeats: int = 5) -> float:
        """Milliseconds per request, best of ``repeats`` runs of ``n`` (the least disturbed by other processes)."""
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            for i in range(n):
                step(i)
            runs.append(1e3 * (time.perf_counter() - start) / n)
        return min(runs)

    for i in range(len(requests)):  # warm up
        both(i)
    per_ms = best_ms(both)
    return {"n": n, "per_request_ms": round(per_ms, 4), "parse_ms": round(best_ms(parse_only), 4),
            "route_ms": round(best_ms(route_only), 4), "budget_ms": 1.0, "ok": per_ms < 1.0}
