"""Training schedules: NExT-GPT's three stages, or ModaVerse's one, for either output design.

NExT-GPT trains in three stages, each with its own data and its own trainable parts::

    stage 1  encoding side      medium → its caption           input projection (+ <Media> rows)      LLM frozen
    stage 2  decoding side      caption request → output       output projections + signal-token rows LLM frozen
    stage 3  instruction tuning the instruction data           LoRA + both projections + new-token rows

ModaVerse trains once: every trainable part on the instruction data (``train.align_train``). Both schedules apply
to both output designs, so each factor is seen on its own: the meta-response trained in three stages (its decoding
side has no output projection: stage 2 teaches LoRA to write the meta-response for a caption request, the
language-level counterpart), and the latent output (``latent.py``) trained in one.

``run_schedule`` is one plain loop for every stage and every arm: AdamW over the stage's parameter groups, warm-up
then cosine decay, gradient clipping, batches seeded by step (``train.StepBatches``), as ``align_train`` trains.
Training seconds exclude evaluation and count every stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from . import meta, zoo
from .model import Example, ModaVerseLite, media_rows
from .train import StepBatches

#: parameter groups a stage may train (``parameter_groups``)
GROUPS = ("input", "tokens", "lora", "output")
#: the fixed request of stage 1: NExT-GPT's encoding side learns to caption, whatever the instruction says
CAPTION_REQUEST = "Describe it."


@dataclass(frozen=True)
class Stage:
    """One stage: its name, its data (``"captions"``: medium → caption; ``"caption pairs"``: the text→X requests;
    ``"instructions"``: the instruction data), the parameter groups it trains and its optimizer steps."""

    name: str
    data: str
    trains: tuple[str, ...]
    steps: int


def three_stages(output: str, steps: int, caption_steps: int, decoding_steps: int) -> tuple[Stage, ...]:
    """NExT-GPT's schedule for ``output`` ``"latent"`` or ``"meta"`` (``steps``: the instruction stage's)."""
    decoding = ("output", "tokens") if output == "latent" else ("lora",)
    return (Stage("1 encoding side", "captions", ("input", "tokens"), caption_steps),
            Stage("2 decoding side", "caption pairs", decoding, decoding_steps),
            Stage("3 instruction tuning", "instructions", GROUPS, steps))


def one_stage(steps: int) -> tuple[Stage, ...]:
    """ModaVerse's schedule: everything, once, on the instruction data."""
    return (Stage("single stage", "instructions", GROUPS, steps),)


def parameter_groups(model: ModaVerseLite) -> dict[str, list[torch.nn.Parameter]]:
    """The model's trainable tensors by group: the input side, the new-token rows (peft's trainable tokens), LoRA,
    and the output projections (the latent design only)."""
    groups = {g: [] for g in GROUPS}
    groups["input"] = [q for q in model.projections.parameters() if q.requires_grad]
    groups["output"] = [q for q in getattr(model, "outputs", torch.nn.Module()).parameters() if q.requires_grad]
    for name, q in model.llm.named_parameters():
        if q.requires_grad:
            groups["tokens" if "trainable_tokens" in name else "lora"].append(q)
    return groups


def stage_examples(model: ModaVerseLite, data: str, records, rows) -> list[Example]:
    """The examples of a stage's data, from the training records and their feature rows.

    ``"captions"``: each distinct input medium with its caption as the whole answer (plain text); ``"caption
    pairs"``: the text→X records (a caption in a request, the output as the design writes it); ``"instructions"``:
    every record."""
    if data == "instructions":
        return model.examples(records, rows)
    if data == "caption pairs":
        chosen = [(r, row) for r, row in zip(records, rows) if not r.inputs and r.target.modality in meta.MEDIA]
        return model.examples([r for r, _ in chosen], [row for _, row in chosen])
    if data == "captions":
        seen, out = set(), []
        for r, row in zip(records, rows):
            for modality, i in media_rows(row):  # each medium of the record, once in all
                if (modality, i) not in seen:
                    seen.add((modality, i))
                    out.append(model.tokenize(CAPTION_REQUEST, modality, i, r.captions[modality]))
        return out
    raise ValueError(f"unknown stage data {data!r}; expected 'captions', 'caption pairs' or 'instructions'")


@dataclass
class ScheduleResult:
    history: list[tuple[str, int, float]] = field(default_factory=list)  # (stage, step, loss)
    evals: list[dict] = field(default_factory=list)  # periodic: stage, step, seconds (all stages so far), scores
    seconds: dict[str, float] = field(default_factory=dict)  # training seconds per stage
    examples: dict[str, int] = field(default_factory=dict)  # data items per stage
    trainable: dict[str, int] = field(default_factory=dict)  # trainable parameters per stage

    @property
    def total_seconds(self) -> float:
        return round(sum(self.seconds.values()), 2)


def run_schedule(model: ModaVerseLite, stages: tuple[Stage, ...], records, rows, features: dict[str, torch.Tensor],
                 lr: float, batch_size: int, warmup_steps: int, seed: int = 0, tag_weight: float = 1.0,
                 max_grad_norm: float = 1.0, threads: int = 0, evaluate: Callable[[], dict] | None = None,
                 eval_every: int = 0, progress: bool = False) -> ScheduleResult:
    """Train ``model`` through ``stages`` in order; ``evaluate()`` runs every ``eval_every`` steps of the last stage
    and at its end (its seconds not counted), each result stored with the training seconds of every stage so far."""
    from transformers import get_cosine_schedule_with_warmup

    result = ScheduleResult()
    groups = parameter_groups(model)
    elapsed = 0.0
    with zoo.fixed_threads(threads):
        for number, stage in enumerate(stages):
            examples = stage_examples(model, stage.data, records, rows)
            trained = [q for g in stage.trains for q in groups[g]]
            result.examples[stage.name] = len(examples)
            result.trainable[stage.name] = sum(q.numel() for q in trained)
            optimizer = torch.optim.AdamW(trained, lr=lr, weight_decay=0.0)
            scheduler = get_cosine_schedule_with_warmup(optimizer, min(warmup_steps, stage.steps // 10 or 1),
                                                        stage.steps)
            batches = StepBatches(len(examples), batch_size, seed * 7 + number, 0, stage.steps)
            last = number == len(stages) - 1
            model.train()
            began, seconds = time.perf_counter(), 0.0
            bar = tqdm(batches, desc=stage.name, disable=not progress, leave=False)
            for step, idx in enumerate(bar, 1):
                torch.manual_seed(seed * 100_003 + step)
                loss = model.loss([examples[i] for i in idx], features, tag_weight)
                loss.backward()
                if max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(trained, max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                result.history.append((stage.name, step, round(loss.item(), 5)))
                if last and evaluate is not None and (step == stage.steps or eval_every and step % eval_every == 0):
                    seconds += time.perf_counter() - began
                    scores = evaluate()
                    result.evals.append({"stage": stage.name, "step": step,
                                         "seconds": round(elapsed + seconds, 2), **scores})
                    model.train()
                    began = time.perf_counter()
            seconds += time.perf_counter() - began
            result.seconds[stage.name] = round(seconds, 2)
            elapsed += seconds
    model.eval()
    return result


__all__ = ["CAPTION_REQUEST", "GROUPS", "ScheduleResult", "Stage", "one_stage", "parameter_groups", "run_schedule",
           "stage_examples", "three_stages"]
