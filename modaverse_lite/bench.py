"""Benchmarks anyone can re-run: ``python -m modaverse_lite bench align --json``.

``bench_align`` measures training throughput of our loop (features encoded once and cached, instructions
tokenised once) against a naive loop that, like the paper's reference code, loads, encodes and tokenises every
sample inside every step. Both run in the same process, on the same model, batches and machine.
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
from .train import build_model, default_dataset, examples_for, media_features


def _peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def _steps(model, batches, make_batch) -> float:
    """Seconds for one optimiser step per batch; ``make_batch`` turns records into (examples, features)."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    start = time.perf_counter()
    for batch in batches:
        examples, features = make_batch(batch)
        loss = model.loss(examples, features)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


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
    ours = _steps(model, batches, lambda batch: ([examples[position[id(r)]] for r in batch], features))

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

    naive = _steps(model, batches, naive_batch)
    samples = len(train)
    return {"profile": p.name, "steps": len(batches), "batch_size": batch_size, "samples": samples,
            "ours_samples_per_s": round(samples / ours, 1), "naive_samples_per_s": round(samples / naive, 1),
            "ratio": round(naive / ours, 2), "ours_prepare_s": round(prepare, 2),
            "peak_memory_mb": round(_peak_memory_mb(), 1),
            "device": "cuda" if torch.cuda.is_available() else "cpu", "threads": torch.get_num_threads()}
