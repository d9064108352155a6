"""Benchmarks anyone can re-run: ``python -m modaverse_lite bench align|seeds --json``.

``bench_align`` measures training throughput of our loop (features encoded once and cached, instructions
tokenised once) against a naive loop that, like the paper's reference code, loads, encodes and tokenises every
sample inside every step. Both run in the same process, on the same model, batches and machine. The optimiser
step is the same in both, so the ratio is ``1 + (loading, encoding, tokenising) / step`` per sample: it measures
what the frozen encoders cost next to the LLM's step, and ``ms_per_sample`` shows both.

``bench_seeds`` trains the same recipe from several seeds (each with its own dataset) and reports the spread of
the held-out and unseen-combination scores: one seed's figure on a split of a few hundred items is not a result.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import torch

from . import dataset as ds
from .encode import load_encoder
from .profiles import Profile, get_profile
from .train import TrainConfig, align_train, build_model, default_dataset, examples_for, media_features


def _peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def _steps(model, batches, make_batch) -> tuple[float, float]:
    """Seconds for one optimiser step per batch, and the part of them spent in ``make_batch`` (records →
    examples and features). The first batch runs once untimed before the clock starts (lazy initialisation,
    allocator warm-up)."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    making = 0.0

    def step(batch):
        nonlocal making
        began = time.perf_counter()
        examples, features = make_batch(batch)
        making += time.perf_counter() - began
        loss = model.loss(examples, features)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step(batches[0])
    making = 0.0
    start = time.perf_counter()
    for batch in batches:
        step(batch)
    return time.perf_counter() - start, making


def bench_align(profile: str | Profile = "tiny", steps: int = 20, batch_size: int | None = None, seed: int = 0,
                data_dir: str | None = None) -> dict:
    """Samples/s of our loop and of the naive loop, their ratio, the one-off encoding time, peak memory."""
    p = get_profile(profile)
    batch_size = batch_size or p.train.batch_size
    root = Path(data_dir) if data_dir else default_dataset(p, seed)
    train = [r for r in ds.read_records(root) if r.split == "train"][: steps * batch_size]
    batches = [train[i:i + batch_size] for i in range(0, len(train), batch_size)]
    model = build_model(p, seed)

    began = time.perf_counter()  # ours: encode every medium once (cached on disk), tokenise every record once
    features, rows = media_features(train, root, p, progress=False)
    examples = examples_for(model, train, rows)
    prepare = time.perf_counter() - began
    position = {id(r): i for i, r in enumerate(train)}
    ours, _ = _steps(model, batches, lambda batch: ([examples[position[id(r)]] for r in batch], features))

    encoders = {m: load_encoder(m, p) for m in ("image", "audio", "video")}

    def naive_batch(batch):  # the reference code's way: per sample, inside the step
        examples, features = [], {}
        for r in batch:
            modality = r.inputs[0] if r.inputs else None
            row = -1
            if modality:
                enc = encoders[modality]
                vector = enc.embed([enc.load(r.media_path(root, modality))])
                features.setdefault(modality, []).append(vector)
                row = len(features[modality]) - 1
            examples.append(model.tokenize(r.instruction, modality, row, r.response()))
        return examples, {m: torch.cat(v) for m, v in features.items()}

    naive, naive_making = _steps(model, batches, naive_batch)
    samples = len(train)
    ms = 1000 / samples
    return {"profile": p.name, "steps": len(batches), "batch_size": batch_size, "samples": samples,
            "ours_samples_per_s": round(samples / ours, 1), "naive_samples_per_s": round(samples / naive, 1),
            "ratio": round(naive / ours, 2), "ours_prepare_s": round(prepare, 2),
            # where a sample's time goes: ratio ≈ 1 + naive_encode_tokenise / ours_step
            "ms_per_sample": {"ours_step": round(ours * ms, 3), "naive_step": round((naive - naive_making) * ms, 3),
                              "naive_encode_tokenise": round(naive_making * ms, 3)},
            "peak_memory_mb": round(_peak_memory_mb(), 1),
            "device": "cuda" if torch.cuda.is_available() else "cpu", "threads": torch.get_num_threads()}


def bench_seeds(profile: str | Profile = "tiny", seeds: tuple[int, ...] = (0, 1, 2), steps: int | None = None,
                out_dir: str | Path | None = None, records: int | None = None, progress: bool = True) -> dict:
    """Train once per seed (fresh runs under ``out_dir``, each on the default dataset of that seed, of ``records``
    records); per-seed and summary scores for val, unseen and phrasing."""
    from .zoo import cache_dir

    p = get_profile(profile)
    out_dir = Path(out_dir) if out_dir else cache_dir() / "runs" / f"bench-seeds-{p.name}"
    runs = []
    for seed in seeds:
        data = default_dataset(p, seed, records)
        result = align_train(TrainConfig(profile=p, data_dir=str(data), out_dir=str(out_dir / f"seed{seed}"),
                                         seed=seed, steps=steps, resume=False, progress=progress))
        split = result.metrics["per_split"]
        runs.append({"seed": seed, "train_seconds": result.seconds, "steps": result.steps,
                     "val_routing": split["val"]["routing"], "val_exact": split["val"]["exact"],
                     "unseen_exact": split["unseen"]["exact"], "unseen_attributes": split["unseen"]["attributes"],
                     "phrasing_exact": split["phrasing"]["exact"]})
    summary = {}
    for key in ("val_routing", "val_exact", "unseen_exact", "unseen_attributes", "phrasing_exact", "train_seconds"):
        values = [r[key] for r in runs]
        summary[key] = {"mean": round(sum(values) / len(values), 4), "min": min(values), "max": max(values)}
    return {"profile": p.name, "seeds": list(seeds), "runs": runs, "summary": summary,
            "threads": torch.get_num_threads()}
