"""Metrics of I/O alignment: does the LLM answer with the right meta-response?

* **routing** — the modality flag is the target's ([IMAGE] when an image was asked for);
* **exact** — flag and prompt both equal the target (case and spaces ignored);
* **attributes** — for world prompts, the share of attributes right ("a red square" for "a red circle": 1/2);
* **parse** — the answer is a well-formed meta-response (``meta.parse(...).ok``).

An answer with several segments (``Modality: [TEXT] …`` then ``Modality: [AUDIO] …``) is scored segment by segment
(``score_answer``): routing and exact count only when *every* segment is right, in order, and no segment is missing
or extra (the whole answer); ``segments`` holds each segment's exact. A one-segment target scores as above.

Reported overall, per input→output pair and per split (the ``unseen`` split holds attribute combinations never
seen in training; ``phrasing`` holds instruction phrasings never seen in training).

``answer(model, records, root)`` is the one road from records to replies (features → examples → greedy
meta-responses), used by training's evaluation, the round trip and the notebooks. ``AttributeProbes`` read world
attributes off frozen features: how informative the encoders are (``linear_probe``), and what a generated file shows.
"""

from __future__ import annotations

import os
from collections import defaultdict
from functools import lru_cache

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import meta, world
from .encode import encode, record_features
from .profiles import Profile, get_profile


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


def _attribute_score(target_prompt: str, predicted_prompt: str) -> float | None:
    """Share of world attributes the prediction gets right; None when the target is not a world caption."""
    truth = world.parse_caption(target_prompt)
    if truth is None:
        return None
    guess = world.attributes_of(predicted_prompt, truth[0])
    if guess is None:
        return 0.0
    return sum(guess[k] == v for k, v in truth[1].items()) / len(truth[1])


def _segment_score(target_modality: str, target_prompt: str, segment) -> dict[str, float | None]:
    """Routing, exact and attributes of one answered segment (``meta.Segment``, or None when it is missing)."""
    routed = segment is not None and segment.modality == target_modality
    exact = routed and _norm(segment.prompt) == _norm(target_prompt)
    attrs = _attribute_score(target_prompt, segment.prompt) if routed else (
        0.0 if world.parse_caption(target_prompt) else None)
    return {"routing": float(routed), "exact": float(exact), "attributes": attrs}


def score_one(target_modality: str, target_prompt: str, prediction: str) -> dict[str, float | None]:
    """The four metrics for one answer (``attributes`` is None when they do not apply)."""
    parsed = meta.parse(prediction)
    return {**_segment_score(target_modality, target_prompt, parsed.segments[0]), "parse": float(parsed.ok)}


def score_answer(segments, prediction: str) -> dict:
    """The metrics of an answer against target ``segments`` (``[(modality, prompt), ...]``): ``score_one`` for one
    segment; for several, each segment's scores and the whole answer's — ``routing`` / ``exact`` are 1 only when
    every segment is right, in order, with none missing or extra; ``attributes`` is the mean over the segments
    that have them; ``segments`` lists each segment's exact."""
    segments = [tuple(s) for s in segments]
    if len(segments) == 1:
        return score_one(*segments[0], prediction)
    parsed = meta.parse(prediction)
    got = parsed.segments
    each = [_segment_score(m, p, got[k] if k < len(got) else None) for k, (m, p) in enumerate(segments)]
    same_length = len(got) == len(segments)
    attrs = [e["attributes"] for e in each if e["attributes"] is not None]
    return {"routing": float(same_length and all(e["routing"] for e in each)),
            "exact": float(same_length and all(e["exact"] for e in each)),
            "attributes": sum(attrs) / len(attrs) if attrs else None, "parse": float(parsed.ok),
            "segments": [e["exact"] for e in each]}


#: How a notebook table marks an answer against its ground truth.
RIGHT, WRONG = "✓", "✗"


def marks(target_modality, target_prompt: str | None = None, prediction: str | None = None) -> dict[str, str]:
    """✓ / ✗ for one answer, from ``score_one``: ``routing`` (the modality flag) and ``exact`` (flag and prompt).
    ``marks(segments, prediction)`` marks a several-segment answer as a whole (``score_answer``)."""
    if prediction is None:  # marks([(modality, prompt), ...], prediction)
        score = score_answer(target_modality, target_prompt)
    else:
        score = score_one(target_modality, target_prompt, prediction)
    return {key: RIGHT if score[key] else WRONG for key in ("routing", "exact")}


def _mean(rows: list[dict]) -> dict:
    out = {"n": len(rows)}
    for key in ("routing", "exact", "attributes", "parse"):
        values = [r[key] for r in rows if r[key] is not None]
        out[key] = round(sum(values) / len(values), 4) if values else None
    return out


def summarise(records, predictions: list[str]) -> dict:
    """Metrics ``overall``, ``per_pair``, ``per_split``, ``per_split_pair`` (split → pair → metrics) and an
    ``unseen`` section, from records + answers. When some targets have several segments, ``per_segment`` gives
    each such pair's exact segment by segment beside its whole-answer exact (split → pair → ``{"n", "exact",
    "segment_exact"}``)."""
    rows = [dict(score_answer(r.target.segments, p), pair=r.pair, split=r.split)
            for r, p in zip(records, predictions)]
    by_pair, by_split = defaultdict(list), defaultdict(list)
    for row in rows:
        by_pair[row["pair"]].append(row)
        by_split[row["split"]].append(row)
    split_pairs: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        split_pairs[row["split"]][row["pair"]].append(row)
    per_split_pair = {s: {k: _mean(v) for k, v in sorted(pairs.items())} for s, pairs in sorted(split_pairs.items())}
    out = {"overall": _mean(rows),
           "per_pair": {k: _mean(v) for k, v in sorted(by_pair.items())},
           "per_split": {k: _mean(v) for k, v in sorted(by_split.items())},
           "per_split_pair": per_split_pair,
           "unseen": {"overall": _mean(by_split.get("unseen", [])), "per_pair": per_split_pair.get("unseen", {})}}
    if any("segments" in row for row in rows):
        out["per_segment"] = {s: {k: _segment_means(v) for k, v in sorted(pairs.items()) if "segments" in v[0]}
                              for s, pairs in sorted(split_pairs.items())}
    return out


def _segment_means(rows: list[dict]) -> dict:
    n, k = len(rows), len(rows[0]["segments"])
    return {"n": n, "exact": round(sum(r["exact"] for r in rows) / n, 4),
            "segment_exact": [round(sum(r["segments"][j] for r in rows) / n, 4) for j in range(k)]}


def metrics_table(summary: dict, key: str = "per_pair") -> list[dict]:
    """Rows for a notebook table (one per pair or split)."""
    return [{"": name, **values} for name, values in summary[key].items()]


# ---- records → replies ---------------------------------------------------------------------------------------
def answer(model, records, root: str | os.PathLike | None = None, profile: str | Profile = "auto", features=None,
           batch_size: int = 64, max_new_tokens: int = 24, progress: bool = False) -> list[str]:
    """The model's greedy meta-responses to dataset records, in batches: the one road from records to replies.

    The records' media (under dataset folder ``root``) are encoded by the profile's frozen encoders — once: the
    features are cached — each record becomes an ``Example`` (its instruction tokenised, no target) and the model
    answers. ``features``: the records' ``(tables, rows)`` from ``encode.record_features`` when the caller holds
    them already (training does), instead of ``root`` and ``profile``.
    """
    kind = getattr(model.projections, "features", "pooled")  # pooled embeddings or token sequences
    tables, rows = features if features is not None else record_features(records, root, profile, progress=progress,
                                                                         kind=kind)
    device = next(model.parameters()).device
    tables = {m: f.to(device) for m, f in tables.items()}
    examples = model.examples(records, rows, with_targets=False)
    model.eval()
    out = []
    for i in tqdm(range(0, len(examples), batch_size), desc="answer", disable=not progress, leave=False):
        out += model.generate(examples[i:i + batch_size], tables, max_new_tokens)
    return out


# ---- attribute probes: what do frozen features show? -------------------------------------------------------
def _fit_probe(x: torch.Tensor, y: torch.Tensor, classes: int, seed: int, steps: int = 300) -> torch.nn.Linear:
    torch.manual_seed(seed)
    probe = torch.nn.Linear(x.shape[1], classes)
    opt = torch.optim.Adam(probe.parameters(), lr=0.05)
    for _ in range(steps):
        loss = F.cross_entropy(probe(x), y) + 1e-4 * probe.weight.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return probe


def _world_features(samples, modality: str, profile) -> torch.Tensor:
    return encode([s.data for s in samples], modality, profile, cache=False, source_rate=world.SAMPLE_RATE,
                  progress=False).flatten(1)


class AttributeProbes:
    """Linear classifiers that read world attributes off frozen features (video: frames concatenated).

    Fitted on seen attribute combinations only. ``read(features, modality)`` → one attribute dict per row.
    """

    def __init__(self, profile: str | Profile = "auto", n_train: int = 600, seed: int = 0):
        self.profile = profile
        self.probes: dict[tuple[str, str], torch.nn.Linear] = {}
        for modality in world.MODALITIES:
            train = world.generate(modality, n_train, seed=seed, split="seen")
            x = _world_features(train, modality, profile)
            for attribute in world.ATTRIBUTES[modality]:
                values = world.VALUES[attribute]
                y = torch.tensor([values.index(s.attributes[attribute]) for s in train])
                self.probes[modality, attribute] = _fit_probe(x, y, len(values), seed)

    @torch.no_grad()
    def read(self, features: torch.Tensor, modality: str) -> list[dict[str, str]]:
        x = features.flatten(1)
        guesses = {a: self.probes[modality, a](x).argmax(-1).tolist() for a in world.ATTRIBUTES[modality]}
        return [{a: world.VALUES[a][guesses[a][i]] for a in guesses} for i in range(x.shape[0])]


def linear_probe(profile: str | Profile = "auto", n_train: int = 600, n_test: int = 300, seed: int = 0) -> dict:
    """Held-out accuracy of a linear classifier on frozen features, for every world attribute.

    Trained on seen attribute combinations; tested on fresh media of every combination, unseen ones included.
    """
    probes = AttributeProbes(profile, n_train, seed)
    results = {}
    for modality in world.MODALITIES:
        test = world.generate(modality, n_test, seed=seed + 1, split="all")
        guesses = probes.read(_world_features(test, modality, profile), modality)
        for attribute in world.ATTRIBUTES[modality]:
            right = [g[attribute] == s.attributes[attribute] for g, s in zip(guesses, test)]
            results[f"{modality}.{attribute}"] = round(sum(right) / len(right), 4)
    return results


@lru_cache(maxsize=4)
def _fitted_probes(profile_name: str, n_train: int, seed: int) -> AttributeProbes:
    return AttributeProbes(profile_name, n_train=n_train, seed=seed)


def attribute_probes(profile: str | Profile = "tiny", n_train: int = 600, seed: int = 0) -> AttributeProbes:
    """``AttributeProbes`` for a profile, fitted once per process (a few seconds in the tiny profile)."""
    return _fitted_probes(get_profile(profile).name, int(n_train), int(seed))
