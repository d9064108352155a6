"""Metrics of I/O alignment: does the LLM answer with the right meta-response?

* **routing** — the modality flag is the target's ([IMAGE] when an image was asked for);
* **exact** — flag and prompt both equal the target (case and spaces ignored);
* **attributes** — for world prompts, the share of attributes right ("a red square" for "a red circle": 1/2);
* **parse** — the answer is a well-formed meta-response (``meta.parse(...).ok``).

Reported overall, per input→output pair and per split (the ``unseen`` split holds attribute combinations never
seen in training; ``phrasing`` holds instruction phrasings never seen in training).
"""

from __future__ import annotations

from collections import defaultdict

from . import meta, world


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


def _attribute_score(target_prompt: str, predicted_prompt: str) -> float | None:
    """Share of world attributes the prediction gets right; None when the target is not a world caption."""
    truth = world.parse_caption(target_prompt)
    if truth is None:
        return None
    guess = world.parse_caption(predicted_prompt)
    if guess is None or guess[0] != truth[0]:
        return 0.0
    return sum(guess[1][k] == v for k, v in truth[1].items()) / len(truth[1])


def score_one(target_modality: str, target_prompt: str, prediction: str) -> dict[str, float | None]:
    """The four metrics for one answer (``attributes`` is None when they do not apply)."""
    parsed = meta.parse(prediction)
    routed = parsed.modality == target_modality
    exact = routed and _norm(parsed.prompt) == _norm(target_prompt)
    attrs = _attribute_score(target_prompt, parsed.prompt) if routed else (
        0.0 if world.parse_caption(target_prompt) else None)
    return {"routing": float(routed), "exact": float(exact), "attributes": attrs, "parse": float(parsed.ok)}


def _mean(rows: list[dict]) -> dict:
    out = {"n": len(rows)}
    for key in ("routing", "exact", "attributes", "parse"):
        values = [r[key] for r in rows if r[key] is not None]
        out[key] = round(sum(values) / len(values), 4) if values else None
    return out


def summarise(records, predictions: list[str]) -> dict:
    """Metrics ``overall``, ``per_pair``, ``per_split``, and an ``unseen`` section, from records + answers."""
    rows = [dict(score_one(r.target.modality, r.target.prompt, p), pair=r.pair, split=r.split)
            for r, p in zip(records, predictions)]
    by_pair, by_split = defaultdict(list), defaultdict(list)
    for row in rows:
        by_pair[row["pair"]].append(row)
        by_split[row["split"]].append(row)
    unseen = by_split.get("unseen", [])
    unseen_pairs = defaultdict(list)
    for row in unseen:
        unseen_pairs[row["pair"]].append(row)
    return {"overall": _mean(rows),
            "per_pair": {k: _mean(v) for k, v in sorted(by_pair.items())},
            "per_split": {k: _mean(v) for k, v in sorted(by_split.items())},
            "unseen": {"overall": _mean(unseen), "per_pair": {k: _mean(v) for k, v in sorted(unseen_pairs.items())}}}


def table(summary: dict, key: str = "per_pair") -> list[dict]:
    """Rows for a notebook table (one per pair or split)."""
    return [{"": name, **values} for name, values in summary[key].items()]
