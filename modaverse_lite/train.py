"""``align_train``: ModaVerse's single training stage.

One loop, no pretraining stages, no output projection: the projections, the LoRA adapters and the new-token rows
learn together to answer each instruction with its target meta-response. The loop is plain PyTorch driven by
🤗 accelerate, so it runs unchanged on a CPU, one GPU (with bf16/fp16 autocast) or several processes
(``torchrun`` / ``accelerate launch``; README): each process takes its own batches, the loss runs through the
prepared module's ``forward`` so DistributedDataParallel averages the gradients, and only the main process
evaluates and writes checkpoints. ``steps`` counts optimizer steps whatever the number of processes.

What makes it cheap: the encoders are frozen, so every medium is encoded once (``encode.record_features`` caches
the features on disk) and every instruction is tokenised once; a step only gathers rows and runs the LLM. AdamW
with warm-up, cosine decay and gradient clipping (``max_grad_norm``: a high LoRA rank at a high learning rate can
otherwise blow up).

``resume=True`` continues the same run from its last checkpoint: batches and dropout are seeded by step, so a
resumed run follows the same loss curve as an uninterrupted one. The model writes its own checkpoint
(``ModaVerseLite.save_pretrained``); training adds the optimizer state to it. One run at a time per run
folder: ``align_train`` holds the folder's lock (``files.locked``) until it returns.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from . import files, zoo
from .aligners import feature_kind
from .encode import record_features
from .errors import CheckpointError, DatasetError, ProfileError, TrainingError
from .evaluate import answer, summarise
from .model import CHECKPOINT, INFO_FILE, ModaVerseLite, build_model, checkpoint_info, find_checkpoint, read_tensors
from .profiles import Profile, TrainSettings, get_profile
from .records import read_records

if TYPE_CHECKING:
    from accelerate import Accelerator

EVAL_SPLITS = ("val", "unseen", "phrasing")
MAX_SKIPPED_STEPS = 20  # optimizer steps in a row the fp16 gradient scaler may skip before the run stops
_DEFAULTS = TrainSettings()


@dataclass
class TrainConfig:
    """Everything one run needs, every field concrete. ``TrainConfig.from_profile`` fills the training settings
    from a profile; keyword overrides replace some of them."""

    profile: Profile
    data_dir: str  # an instruction dataset folder (``dataset.default_dataset`` gives the default one)
    out_dir: str = "runs/align"  # the run folder; its checkpoint/ is resumed when ``resume``
    seed: int = 0
    steps: int = _DEFAULTS.steps
    batch_size: int = _DEFAULTS.batch_size
    lr: float = _DEFAULTS.lr
    warmup_steps: int = _DEFAULTS.warmup_steps
    weight_decay: float = _DEFAULTS.weight_decay
    max_grad_norm: float = _DEFAULTS.max_grad_norm  # 0: no clipping
    grad_accum: int = _DEFAULTS.grad_accum
    eval_every: int = _DEFAULTS.eval_every
    max_new_tokens: int = _DEFAULTS.max_new_tokens
    tag_weight: float = _DEFAULTS.tag_weight  # loss weight of the modality tag (profiles.TrainSettings)
    token_dropout: float = _DEFAULTS.token_dropout  # ids of a request left out in training (``drop_tokens``)
    threads: int = _DEFAULTS.threads  # CPU threads (0: torch's default; profiles.TrainSettings)
    eval_items: int = _DEFAULTS.eval_items  # items per split scored in the final evaluation (periodic: a third)
    resume: bool = True
    mixed_precision: str = "auto"  # "auto": bf16 where supported on GPU, else fp16 on GPU, none on CPU
    progress: bool = True

    def __post_init__(self):
        self.profile = get_profile(self.profile)
        self.data_dir, self.out_dir = str(self.data_dir), str(self.out_dir)

    @classmethod
    def from_profile(cls, profile: str | Profile = "auto", data_dir: str | Path = "", out_dir: str | Path =
                     "runs/align", **overrides) -> TrainConfig:
        """The profile's training settings (``profile.train``), with ``overrides`` (None keeps the profile's)."""
        p = get_profile(profile)
        known = {f.name for f in fields(cls)} - {"profile", "data_dir", "out_dir"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ProfileError(f"unknown training setting(s) {unknown}; expected some of {sorted(known)}")
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(profile=p, data_dir=str(data_dir), out_dir=str(out_dir), **{**asdict(p.train), **given})


@dataclass
class TrainResult:
    checkpoint: Path
    history: list[tuple[int, float]]  # (step, loss)
    evals: list[dict] = field(default_factory=list)  # periodic evaluation: step, training seconds so far, routing,
    # exact, and each split's ("val_exact", "unseen_routing", …)
    metrics: dict = field(default_factory=dict)  # final evaluation (evaluate.summarise)
    seconds: float = 0.0  # training time, evaluation excluded
    steps: int = 0
    model: ModaVerseLite | None = field(default=None, repr=False)  # the trained model, in memory
    lrs: list[float] = field(default_factory=list)  # the learning rate of each optimizer step this call took
    main_process: bool = True  # False in the other processes of a several-process run (no metrics, no checkpoint)


class StepBatches(torch.utils.data.Sampler):
    """Batch indices for steps ``start..stop``: step s's batch depends only on (seed, s), so a resumed run
    sees exactly the batches an uninterrupted one would."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int):
        self.n, self.batch_size, self.seed, self.start, self.stop = n, batch_size, seed, start, stop
        self.per_epoch = max(1, n // batch_size)

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self):
        for step in range(self.start, self.stop):
            epoch, k = divmod(step, self.per_epoch)
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
            yield order[k * self.batch_size:(k + 1) * self.batch_size].tolist()


# ---- the optimizer's state, beside the model's checkpoint --------------------------------------------------------
def _save_optimizer(optimizer, folder: Path) -> None:
    from safetensors.torch import save_file

    state = optimizer.state_dict()
    tensors = {f"{i}.{k}": v.detach().cpu().contiguous()
               for i, s in state["state"].items() for k, v in s.items() if torch.is_tensor(v)}
    save_file(tensors, folder / "optimizer.safetensors")
    (folder / "optimizer.json").write_text(json.dumps({"param_groups": state["param_groups"]}))


def _load_optimizer(optimizer, ckpt: Path) -> None:
    """The optimizer's state from ``ckpt``. Without it a resumed run would restart AdamW's moments and leave the
    curve it was on, so a missing or mismatched state is a CheckpointError, not a silent fresh start."""
    tensors = read_tensors(ckpt / "optimizer.safetensors")
    try:
        groups = json.loads((ckpt / "optimizer.json").read_text())["param_groups"]
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{ckpt}: optimizer.json is missing or damaged ({err!r})") from err
    params = [q for group in optimizer.param_groups for q in group["params"]]
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        i, _, name = key.partition(".")
        state.setdefault(int(i) if i.isdigit() else -1, {})[name] = value
    if sorted(state) != list(range(len(params))) or any(
            name != "step" and value.shape != params[i].shape for i, s in state.items() for name, value in s.items()):
        raise CheckpointError(f"{ckpt}: optimizer.safetensors holds the state of another model (not one entry of "
                              f"the right shape for each of its {len(params)} trained tensors)")
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{ckpt}: optimizer.json does not fit this optimizer ({err!r})") from err


def _progress(ckpt: Path, saved: dict) -> tuple[int, list[tuple[int, float]], list[dict]]:
    """How far the saved run got: its step, loss history and evaluations, checked to add up."""
    step, history, evals = saved.get("step"), saved.get("history"), saved.get("evals", [])
    where = ckpt / INFO_FILE
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"{where}: step should be the number of steps done, got {step!r}")
    if not isinstance(history, list) or len(history) != step or not all(
            isinstance(h, list) and len(h) == 2 and isinstance(h[0], int) and isinstance(h[1], (int, float))
            for h in history):
        raise CheckpointError(f"{where}: history should hold one [step, loss] pair for each of its {step} steps")
    if not isinstance(evals, list) or not all(isinstance(e, dict) for e in evals):
        raise CheckpointError(f"{where}: evals should be a list of objects, got {evals!r:.60}")
    return step, [tuple(h) for h in history], evals


def trained_inputs(records) -> list[str]:
    """The media combinations ``records`` hold, as the checkpoint records them: ``["audio", "image",
    "image+audio", "video"]`` (``assistant.Assistant`` refuses a request with any other)."""
    return sorted({"+".join(r.inputs) for r in records if r.inputs})


def drop_tokens(examples: list, p: float) -> list:
    """The batch with each id of each request's words (``Example.ask``) left out with chance ``p``, but for the ids
    the answer repeats (the caption of "Draw a red circle.", the colour of an edit): the media, the chat frame and
    the target stay. A model that cannot count on every word of a memorised phrasing learns from all of them, and
    reads a new phrasing better (docs/NOTES.md). Drawn from torch's generator, which the training loop seeds by
    batch, so a resumed run leaves out the same ids."""
    if not p:
        return examples
    out = []
    for ex in examples:
        answer = set(ex.target)
        keep = (torch.rand(ex.ask) >= p).tolist()
        words = [i for i, k in zip(ex.tail, keep) if k or i in answer]
        out.append(replace(ex, tail=words + ex.tail[ex.ask:]))
    return out


def _eval_set(records, n: int, seed: int) -> list:
    """Up to ``n`` records of each evaluation split, the same ones every time."""
    chosen = []
    for split in EVAL_SPLITS:
        part = [r for r in records if r.split == split]
        g = torch.Generator().manual_seed(seed)
        chosen += [part[i] for i in torch.randperm(len(part), generator=g)[:n].tolist()]
    return chosen


def mixed_precision(setting: str = "auto") -> str:
    """accelerate's ``mixed_precision`` for a setting: "auto" is bf16 on a GPU with bf16 tensor cores (compute
    capability 8.0 and up: A100, L4, H100), fp16 on an older GPU (a T4 is 7.5), and none on a CPU.

    ``torch.cuda.is_bf16_supported()`` is no guide: it is true on a T4 too, where bf16 is emulated, several times
    slower than fp16.
    """
    if setting != "auto":
        return setting
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.get_device_capability() >= (8, 0) else "fp16"


_FRESH = "to start this run again from step 0 instead, train with --fresh (resume=False)"


def _resume_point(config: TrainConfig, data_dir: Path) -> tuple[Path, dict] | None:
    """The checkpoint this run continues from and its ``modaverse.json`` (None for a fresh start); refuses one of
    another run. A ``checkpoint/`` that cannot be read is an error, not a reason to start again over it."""
    if not config.resume:
        return None
    out = Path(config.out_dir)
    try:
        ckpt = find_checkpoint(out)
    except CheckpointError:
        if (out / CHECKPOINT).exists():
            raise CheckpointError(f"{out / CHECKPOINT}: {INFO_FILE} is missing, so this run cannot continue from "
                                  f"it\n({_FRESH})") from None
        return None
    try:
        saved = checkpoint_info(ckpt)
    except CheckpointError as err:
        raise CheckpointError(f"{err}\n({_FRESH})") from err
    if saved.get("seed") != config.seed or saved.get("data_dir") != str(data_dir):
        raise CheckpointError(f"{ckpt} belongs to another run (seed {saved.get('seed')}, data "
                              f"{saved.get('data_dir')}); use another --out or resume=False")
    return ckpt, saved


def _start(config: TrainConfig, data_dir: Path, train: list):
    """The model and AdamW a run starts from, with its step, history and evaluations: fresh (step 0) or, resuming,
    exactly what the checkpoint saved. CheckpointError, naming the part, if a saved part is unusable. A fresh
    model's input side reads the ``train`` records first if it asks to (``prepare``: tool learning's captions)."""
    resumed = _resume_point(config, data_dir)
    try:
        model = ModaVerseLite.from_pretrained(resumed[0]) if resumed else build_model(config.profile, config.seed)
        if resumed is None and hasattr(model.projections, "prepare"):
            model.projections.prepare(train, config.profile)
        trainable = [q for q in model.parameters() if q.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
        if resumed is None:
            return model, optimizer, 0, [], []
        start, history, evals = _progress(*resumed)
        _load_optimizer(optimizer, resumed[0])
    except CheckpointError as err:
        if resumed is None:
            raise
        raise CheckpointError(f"{err}\n({_FRESH})") from err
    return model, optimizer, start, history, evals


# ---- the loop --------------------------------------------------------------------------------------------------
def _finite(loss: float, step: int, precision: str, out_dir: str) -> float:
    """``loss``, or a ``TrainingError`` when it is NaN or infinite: a run never trains on through a broken loss."""
    if not math.isfinite(loss):
        hint = (" fp16 overflows easily (a known problem of Qwen2 in half precision): train with "
                "mixed_precision='bf16' on a GPU that has it, or 'no'." if precision == "fp16" else
                " Try a lower learning rate.")
        raise TrainingError(f"step {step}: the training loss is {loss}.{hint} The last good checkpoint is in "
                            f"{out_dir}")
    return loss


def align_train(config: TrainConfig) -> TrainResult:
    """Train projections + LoRA + new-token rows on an instruction dataset; returns history, metrics, checkpoint.

    The run holds its folder's lock from start to end: another process training into the same folder is refused
    at once (``BusyError``) instead of saving over this run's checkpoints. Launched as several processes, the
    main one holds it (the others never write there).
    """
    from accelerate import Accelerator, DistributedDataParallelKwargs

    # unused_parameters: a batch without video leaves the video projection without a gradient on that process
    accelerator = Accelerator(mixed_precision=mixed_precision(config.mixed_precision),
                              gradient_accumulation_steps=config.grad_accum,
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    lock = (files.locked(config.out_dir, wait=0, what="run folder") if accelerator.is_main_process
            else contextlib.nullcontext())
    with lock, zoo.fixed_threads(config.threads if accelerator.device.type == "cpu" else 0):
        if accelerator.is_main_process:
            for stale in Path(config.out_dir).glob(f".{CHECKPOINT}.*.tmp"):  # a checkpoint a killed run never
                shutil.rmtree(stale, ignore_errors=True)  # swapped in (no live writer: we hold the lock)
        return _align_train(config, accelerator)


def _align_train(config: TrainConfig, accelerator: Accelerator) -> TrainResult:
    from transformers import get_cosine_schedule_with_warmup

    p, steps, grad_accum, n = config.profile, config.steps, config.grad_accum, accelerator.num_processes
    data_dir = Path(config.data_dir)
    records = read_records(data_dir)
    train = [r for r in records if r.split == "train"]
    if not train:
        raise DatasetError(f"{data_dir}: no records in the 'train' split")
    evaluation = _eval_set(records, config.eval_items, config.seed)
    periodic = _eval_set(records, max(1, config.eval_items // 3), config.seed)
    with accelerator.main_process_first():  # the main process encodes and caches; the others read its cache
        features, rows = record_features(train + evaluation, data_dir, p, progress=config.progress,
                                         kind=feature_kind(p.aligner))  # what the input side reads
    eval_rows = rows[len(train):]
    periodic_rows = [eval_rows[evaluation.index(r)] for r in periodic]

    model, optimizer, start, history, evals = _start(config, data_dir, train)
    train_examples = model.examples(train, rows[:len(train)])

    trainable = [q for group in optimizer.param_groups for q in group["params"]]
    for group in optimizer.param_groups:  # the schedule starts from here when resuming (a fresh run sets it itself)
        group.setdefault("initial_lr", config.lr)
    # the schedule counts optimizer steps: accelerate steps it once per optimizer step (not per micro-batch), and
    # once per process when several processes each take a batch
    scheduler = get_cosine_schedule_with_warmup(optimizer, config.warmup_steps * n, steps * n,
                                                last_epoch=start * n - 1)
    info = {"profile": p.name, "image_encoder": zoo.checkpoint(p, "image_encoder"),
            "audio_encoder": zoo.checkpoint(p, "audio_encoder"), "seed": config.seed, "steps": steps,
            "batch_size": config.batch_size, "lr": config.lr, "data_dir": str(data_dir),
            "inputs": trained_inputs(train)}

    # micro-batch k of the run is StepBatches' batch k; prepare() deals them out in turn, one to each process, so
    # n processes with batch b see the batches one process with batch b and n times the accumulation would
    loader = torch.utils.data.DataLoader(range(len(train_examples)), collate_fn=lambda idx: idx,
                                         batch_sampler=StepBatches(len(train_examples), config.batch_size,
                                                                   config.seed, start * grad_accum * n,
                                                                   steps * grad_accum * n))
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    unwrapped = accelerator.unwrap_model(model)
    features = {m: f.to(accelerator.device) for m, f in features.items()}

    def save(**extra) -> Path:
        directory = Path(config.out_dir) / CHECKPOINT
        if accelerator.is_main_process:
            unwrapped.save_pretrained(directory, {**info, "step": step, "history": history, "evals": evals, **extra},
                                      extra=lambda folder: _save_optimizer(optimizer, folder))
        return directory

    def evaluate_now(subset, subset_rows) -> dict:
        predictions = answer(unwrapped, subset, features=(features, subset_rows),
                             max_new_tokens=config.max_new_tokens)
        return summarise(subset, predictions)

    began, step, running, lrs, skipped = time.perf_counter(), start, [], [], 0
    seconds = 0.0
    bar = tqdm(total=steps, initial=start, desc="align-train", disable=not (config.progress and
                                                                           accelerator.is_main_process))
    model.train()
    for micro, idx in enumerate(loader):
        batch = (start * grad_accum + micro) * n + accelerator.process_index  # which StepBatches batch this is
        torch.manual_seed(config.seed * 100_003 + batch)  # dropout, by batch: resumable
        with accelerator.accumulate(model):
            # the prepared module's forward (ModaVerseLite.forward is the loss): under DDP its backward averages
            # the gradients of all processes; with mixed precision prepare() runs it under autocast
            batch_examples = drop_tokens([train_examples[i] for i in idx], config.token_dropout)
            loss = model(batch_examples, features, config.tag_weight)
            mean = accelerator.reduce(loss.detach(), "mean")  # the loss over every process's batch
            running.append(_finite(mean.item(), step + 1, accelerator.mixed_precision, config.out_dir))
            accelerator.backward(loss)
            if accelerator.sync_gradients and config.max_grad_norm:
                accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
            if accelerator.sync_gradients:
                lrs.append(optimizer.param_groups[0]["lr"])  # the rate this optimizer step uses
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        if not accelerator.sync_gradients:
            continue
        skipped = skipped + 1 if accelerator.optimizer_step_was_skipped else 0
        if skipped > MAX_SKIPPED_STEPS:
            raise TrainingError(f"step {step + 1}: the last {skipped} optimizer steps were skipped by the fp16 "
                                f"gradient scaler (the gradients overflow); train with mixed_precision='bf16' on a "
                                f"GPU that has it, or 'no'. The last good checkpoint is in {config.out_dir}")
        step += 1
        history.append((step, round(sum(running) / len(running), 5)))
        running = []
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1][1]:.3f}")
        if step % config.eval_every == 0 or step == steps:
            seconds += time.perf_counter() - began
            if accelerator.is_main_process:
                s = evaluate_now(periodic, periodic_rows)
                evals.append({"step": step, "seconds": round(seconds, 2), "routing": s["overall"]["routing"],
                              "exact": s["overall"]["exact"],  # and each split's, e.g. "val_exact"
                              **{f"{k}_{m}": v[m] for k, v in s["per_split"].items() for m in ("routing", "exact")}})
                save()
            accelerator.wait_for_everyone()
            model.train()
            began = time.perf_counter()
    bar.close()
    seconds += time.perf_counter() - began
    metrics = evaluate_now(evaluation, eval_rows) if evaluation and accelerator.is_main_process else {}
    final = save(metrics=metrics)
    accelerator.wait_for_everyone()
    return TrainResult(final, history, evals, metrics, round(seconds, 2), step, unwrapped.eval(), lrs,
                       accelerator.is_main_process)
