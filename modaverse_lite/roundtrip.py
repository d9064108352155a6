"""The round trip: does what the assistant *made* show what was asked for?

``evaluate.py`` scores the LLM's words (is the meta-response the target one?). This module scores the whole road:
instruction (+ medium) → LLM → meta-response → generator → **file on disk** → frozen encoder again → does the file
show the target? Each generated file is read back from disk (PNG / WAV / MP4) and re-encoded with the same frozen
encoders the model reads its inputs with, then judged two ways:

* **attributes** (the tiny profile, whose generators draw the synthetic world) — ``evaluate.AttributeProbes``, linear
  classifiers fitted on the frozen features of world media, read the colour / shape / direction or pitch / timbre
  off the re-encoded output, and we compare them with the world attributes of the record's target.
* **similarity** (any profile) — cosine similarity between the output's embedding and the embedding of a prompt
  by the text tower of the same CLIP / CLAP model (``Encoder.embed_text``): the CLIP score / CLAP score. A video's
  embedding is the mean of its frames'.

For each of image, audio and video, on the records whose target is that modality (text→X and X→Y pairs),
``roundtrip_eval`` reports:

``n``                  records evaluated
``routed``             share whose answer's first segment has the target's modality (as ``evaluate``'s routing)
``generated``          share for which a file of that modality was written (routed, and the generator could draw
                       the prompt)
``prompt_accuracy``    share whose LLM prompt names exactly the target's world attributes (the words alone)
``accuracy``           **end to end**: share whose generated file is read back with *all* the target's attributes;
                       a record with no file counts as wrong
``per_attribute``      the same, one attribute at a time
``generator_accuracy`` share of the generated files read back with all the attributes *of the prompt the LLM
                       actually wrote* — whether generator, file format and encoder agree, whatever the LLM said
                       (``None`` when nothing was generated)
``similarity``         mean cosine(output, target prompt) over generated files
``generator_similarity``  mean cosine(output, the LLM's prompt)
``mismatched_similarity`` mean cosine(output, the target prompt of another record): the chance level to compare with
``per_pair``           ``n`` and ``accuracy`` for each input→output pair

Answers with several segments (a caption and its sound, a picture and its sound) are judged whole, every file of
them (``score_answers``): the whole answer is dispatched, each media segment's file is read back and judged
against that segment's target attributes, and each text segment against its target text. ``roundtrip_eval``
reports them under ``"answers"`` when the split holds such records: ``n``, ``files`` (files expected),
``written`` (share of them written), ``per_segment`` (each segment's accuracy) and ``accuracy`` (every segment
right, in order).

So ``accuracy`` ≈ ``prompt_accuracy`` × ``generator_accuracy`` when the two stages fail independently. In the gpu
profile the attribute fields are ``None`` by default (the probes are fitted on world renderings, not on what
Stable Diffusion draws); pass ``probes=True`` to use them anyway.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import meta, world
from .assistant import Assistant
from .dispatch import Dispatcher
from .encode import encode, load_encoder
from .evaluate import answer, attribute_probes
from .records import SPLITS, read_records

MEDIA = meta.MEDIA


def choose_records(records, modality: str, split: str, n: int, seed: int = 0) -> list:
    """Up to ``n`` records of ``split`` whose target is ``modality``, a seeded random choice (always the same)."""
    pool = [r for r in records if r.split == split and r.target.modality == modality and not r.target.then]
    rng = np.random.default_rng([seed, MEDIA.index(modality), SPLITS.index(split)])
    return [pool[i] for i in sorted(rng.permutation(len(pool))[:n])]


def _target_attributes(record, modality: str) -> dict[str, str] | None:
    if "target" in record.attributes and record.target.modality == modality:  # an edit's result
        return dict(record.attributes["target"])
    if modality in record.attributes:
        return dict(record.attributes[modality])
    return world.attributes_of(record.target.prompt, modality)


def _share(flags: list) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _pooled(features: torch.Tensor) -> torch.Tensor:
    """One unit vector per item: a video's frames averaged."""
    return F.normalize(features.mean(1) if features.dim() == 3 else features, dim=-1)


def _score(assistant: Assistant, modality: str, records, responses: list[str], dispatcher: Dispatcher, probes,
           seed: int) -> dict:
    outputs = []  # (record index, output) for each generated file of the target modality
    routed = []
    for i, response in enumerate(responses):
        parsed = meta.parse(response)
        routed.append(parsed.modality == modality)
        if not routed[-1]:
            continue
        first = dispatcher(meta.MetaResponse(parsed.segments[:1], parsed.notes, parsed.raw), seed=seed + i)[0]
        if first.ok and first.path is not None:
            outputs.append((i, first))

    targets = [_target_attributes(r, modality) for r in records]
    asked = [world.attributes_of(meta.parse(t).prompt, modality) if ok else None
             for t, ok in zip(responses, routed)]
    n = len(records)
    result = {"n": n, "routed": _share(routed), "generated": _share([1] * len(outputs) + [0] * (n - len(outputs))),
              "prompt_accuracy": _share([a is not None and a == t for a, t in zip(asked, targets)])}

    read: dict[int, dict[str, str]] = {}
    similarity = {"similarity": [], "generator_similarity": [], "mismatched_similarity": []}
    if outputs:
        features = encode([o.path for _, o in outputs], modality, assistant.profile, cache=False, progress=False)
        if probes is not None:
            read = {i: attrs for (i, _), attrs in zip(outputs, probes.read(features, modality))}
        text_encoder = load_encoder("audio" if modality == "audio" else "image", assistant.profile)
        others = [records[(i + 1) % n].target.prompt for i, _ in outputs]
        texts = [records[i].target.prompt for i, _ in outputs] + [o.prompt for _, o in outputs] + others
        text = text_encoder.embed_text(texts).reshape(3, len(outputs), -1)
        cosines = (_pooled(features)[None] * text).sum(-1)  # [3, generated]
        for key, row in zip(similarity, cosines):
            similarity[key] = row.tolist()

    if probes is None:
        result.update(accuracy=None, per_attribute=None, generator_accuracy=None)
    else:
        right = [i in read and targets[i] is not None and read[i] == targets[i] for i in range(n)]
        result["accuracy"] = _share(right)
        result["per_attribute"] = {a: _share([i in read and targets[i] is not None and read[i][a] == targets[i][a]
                                              for i in range(n)]) for a in world.ATTRIBUTES[modality]}
        agree = [read[i] == asked[i] for i, _ in outputs if asked[i] is not None]
        result["generator_accuracy"] = _share(agree)
        pairs: dict[str, list[bool]] = {}
        for record, ok in zip(records, right):
            pairs.setdefault(record.pair, []).append(ok)
        result["per_pair"] = {p: {"n": len(v), "accuracy": _share(v)} for p, v in sorted(pairs.items())}
    result.update({key: _mean(values) for key, values in similarity.items()})
    return result


def score_answers(assistant: Assistant, records, responses: list[str], dispatcher: Dispatcher, probes,
                  seed: int = 0) -> dict:
    """Every segment of several-segment answers judged: each media segment's file read back by the probes against
    its target attributes (the segment's prompt, as a world caption), each text segment against its text."""
    per_segment: dict[str, list[list[bool]]] = {}
    whole, files, written = [], 0, 0
    for i, (record, response) in enumerate(zip(records, responses)):
        outputs = dispatcher(response, seed=seed + i)
        rights = []
        for k, (m, prompt) in enumerate(record.target.segments):
            out = outputs[k] if k < len(outputs) else None
            if m == "text":
                rights.append(out is not None and out.modality == "text" and out.text is not None
                              and " ".join(out.text.lower().split()) == " ".join(prompt.lower().split()))
                continue
            files += 1
            made = out is not None and out.modality == m and out.ok and out.path is not None
            written += made
            truth = world.attributes_of(prompt, m)
            if made and probes is not None and truth is not None:
                features = encode([out.path], m, assistant.profile, cache=False, progress=False)
                rights.append(probes.read(features, m)[0] == truth)
            else:
                rights.append(False)
        whole.append(all(rights) and len(outputs) == len(record.target.segments))
        per_segment.setdefault(record.pair, []).append(rights)
    return {"n": len(records), "files": files, "written": _share([1] * written + [0] * (files - written)),
            "accuracy": _share(whole),
            "per_pair": {p: {"n": len(v), "per_segment": [_share([r[k] for r in v]) for k in range(len(v[0]))]}
                         for p, v in sorted(per_segment.items())}}


def _responses(assistant: Assistant, records, data_dir: Path, progress: bool = False) -> list[str]:
    """The LLM's meta-responses to ``records``, from the dataset's (cached) media features."""
    return answer(assistant.model, records, data_dir, assistant.profile, max_new_tokens=assistant.max_new_tokens,
                  progress=progress)


def roundtrip_eval(checkpoint: str | os.PathLike | Assistant, data_dir: str | os.PathLike | None = None,
                   split: str = "test", n_per_modality: int = 100, seed: int = 0, unseen: bool = True,
                   probes=None, registry=None, out_dir: str | os.PathLike | None = None,
                   progress: bool = False) -> dict:
    """Generate, read back and judge outputs for image, audio and video; returns ``{"image": {...}, ...}``.

    ``checkpoint`` is a run / checkpoint folder or a ready ``Assistant`` (loaded once, reused). ``data_dir``
    defaults to the dataset the checkpoint was trained on; ``split`` is "test" (held-out media of attribute
    combinations seen in training). With ``unseen=True`` each
    modality's dict also holds an ``"unseen"`` dict: the same metrics on the ``unseen`` split (combinations never
    seen in training). ``probes``: None fits ``evaluate.AttributeProbes`` in the tiny profile only, True always,
    False never; or pass fitted probes. ``registry`` replaces the assistant's generators (e.g. to measure the
    tiny diffusers pipelines). Files go to a temporary folder unless ``out_dir`` is given.
    See the module docstring for the meaning of each number.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if n_per_modality < 1:
        raise ValueError(f"n_per_modality must be at least 1, got {n_per_modality}")
    assistant = checkpoint if isinstance(checkpoint, Assistant) else Assistant(checkpoint)
    data_dir = Path(data_dir or assistant.info["data_dir"])
    records = read_records(data_dir)
    if probes is None:
        probes = assistant.profile.name == "tiny"
    if probes is True:
        probes = attribute_probes(assistant.profile, seed=seed)
    elif probes is False:
        probes = None

    splits = [split] + (["unseen"] if unseen and split != "unseen" else [])
    chosen = {(s, m): choose_records(records, m, s, n_per_modality, seed) for s in splits for m in MEDIA}
    several = [r for r in records if r.split == split and r.target.then][:n_per_modality]
    responses = _responses(assistant, [r for part in chosen.values() for r in part] + several, data_dir, progress)

    with tempfile.TemporaryDirectory(prefix="roundtrip-") as tmp:
        dispatcher = Dispatcher(registry if registry is not None else assistant.registry, out_dir or tmp)
        scores, at = {}, 0
        for (s, m), part in chosen.items():
            if not part:
                scores[s, m] = {"n": 0}
                continue
            scores[s, m] = _score(assistant, m, part, responses[at:at + len(part)], dispatcher, probes, seed)
            at += len(part)
        if several:
            answers = score_answers(assistant, several, responses[at:], dispatcher, probes, seed)
    result = {}
    for m in MEDIA:
        result[m] = {"split": split, **scores[split, m]}
        if len(splits) > 1:
            result[m]["unseen"] = {"split": "unseen", **scores["unseen", m]}
    if several:
        result["answers"] = {"split": split, **answers}
    return result


def roundtrip_table(result: dict) -> list[dict]:
    """One row per modality and split, the headline numbers (for a notebook table or a terminal)."""
    keys = ("n", "routed", "prompt_accuracy", "generator_accuracy", "accuracy", "similarity", "mismatched_similarity")
    rows = []
    for m in MEDIA:
        if m not in result:
            continue
        for part in (result[m], result[m].get("unseen")):
            if part:
                rows.append({"modality": m, "split": part.get("split"), **{k: part.get(k) for k in keys}})
    return rows


def format_roundtrip(result: dict) -> str:
    """``roundtrip_table`` as aligned text."""
    rows = roundtrip_table(result)
    if not rows:
        return "(no results)"
    cols = list(rows[0])
    cells = [[("-" if r[c] is None else str(r[c])) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[j]) for row in cells)) for j, c in enumerate(cols)]

    def line(values):
        return "  ".join(v.ljust(w) for v, w in zip(values, widths))

    return "\n".join([line(cols)] + [line(row) for row in cells])
