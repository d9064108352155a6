"""``align_train``: ModaVerse's single training stage.

One loop, no pretraining stages, no output projection: the projections, the LoRA adapters and the new-token rows
learn together to answer each instruction with its target meta-response. The loop is plain PyTorch driven by
🤗 accelerate, so it runs unchanged on a CPU, one GPU (with bf16/fp16 autocast) or, with ``accelerate launch``,
on several GPUs.

What makes it cheap: the encoders are frozen, so every medium is encoded once (``encode.encode`` caches the
features on disk) and every instruction is tokenised once; a step only gathers rows and runs the LLM. AdamW with
warm-up, cosine decay and gradient clipping (``max_grad_norm``: a high LoRA rank at a high learning rate can
otherwise blow up).

Checkpoints hold only what was trained (adapter, projections, tokenizer with its new tokens, settings) in
safetensors, written to a temporary folder and renamed, so an interrupted save keeps the last good checkpoint.
``resume=True`` continues the same run from its last checkpoint: batches and dropout are seeded by step, so a
resumed run follows the same loss curve as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import dataset as ds
from .encode import encode
from .errors import CheckpointError, DatasetError
from .evaluate import summarise
from .model import ModaVerseLite
from .profiles import LoraSettings, Profile, get_profile

CHECKPOINT = "checkpoint"
EVAL_SPLITS = ("val", "unseen", "phrasing")


@dataclass
class TrainConfig:
    """Everything one run needs; ``None`` means "the profile's setting"."""

    profile: str | Profile = "auto"
    data_dir: str | None = None  # an instruction dataset; None: the default world dataset (built on first use)
    out_dir: str = "runs/align"
    seed: int = 0
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    warmup_steps: int | None = None
    max_grad_norm: float | None = None
    grad_accum: int | None = None
    eval_every: int | None = None
    eval_items: int = 300  # items per split scored in the final evaluation (periodic ones use a third)
    resume: bool = True
    mixed_precision: str = "auto"  # "auto": bf16 where supported on GPU, else fp16 on GPU, none on CPU
    progress: bool = True

    def setting(self, name: str):
        value = getattr(self, name, None)
        return getattr(get_profile(self.profile).train, name) if value is None else value


@dataclass
class TrainResult:
    checkpoint: Path
    history: list[tuple[int, float]]  # (step, loss)
    evals: list[dict] = field(default_factory=list)  # periodic evaluation: step, routing, exact
    metrics: dict = field(default_factory=dict)  # final evaluation (evaluate.summarise)
    seconds: float = 0.0  # training time, evaluation excluded
    steps: int = 0
    model: ModaVerseLite | None = field(default=None, repr=False)  # the trained model, in memory


# ---- data: records → features (encoded once) → examples (tokenised once) ----------------------------------------
def default_dataset_dir(profile: str | Profile = "auto", seed: int = 0, records: int | None = None) -> Path:
    """Where the default world dataset of a profile lives (built or not): ``<cache>/datasets/world-...``."""
    from .zoo import cache_dir

    p = get_profile(profile)
    n = p.dataset_records if records is None else int(records)
    return cache_dir() / "datasets" / f"world-{p.name}-seed{seed}-n{n}-v{ds.RECIPE_VERSION}"


def default_dataset(profile: str | Profile = "auto", seed: int = 0, records: int | None = None) -> Path:
    """The default world dataset of a profile, built into the cache on first use."""
    out = default_dataset_dir(profile, seed, records)
    if not (out / ds.MANIFEST_FILE).exists():
        ds.build_world_dataset(out, get_profile(profile), seed=seed, records=records)
    return out


def default_run_dir(profile: str | Profile = "auto", seed: int = 0) -> Path:
    """Where notebooks keep (and find) a profile's aligned checkpoint: ``<cache>/runs/align-<profile>-seed<seed>``."""
    from .zoo import cache_dir

    return cache_dir() / "runs" / f"align-{get_profile(profile).name}-seed{seed}"


def media_features(records, root: str | Path, profile: str | Profile, progress: bool = True):
    """Feature tables per modality and each record's row: ``({"image": [N, D], ...}, [(modality, row) | None])``."""
    paths: dict[str, dict[str, int]] = {}
    rows = []
    for r in records:
        inputs = r.inputs
        if not inputs:
            rows.append(None)
            continue
        m = inputs[0]
        table = paths.setdefault(m, {})
        rows.append((m, table.setdefault(r.media[m], len(table))))
    features = {m: encode([Path(root) / p for p in table], m, profile, progress=progress)
                for m, table in paths.items()}
    return features, rows


def feature_dims(profile: str | Profile) -> dict[str, int]:
    """Embedding width of each modality's frozen encoder, read from its config."""
    from .encode import load_encoder

    dims = {}
    for m in ("image", "audio", "video"):
        config = load_encoder(m, profile).model.config
        dims[m] = config.projection_dim
    return dims


def build_model(profile: str | Profile, seed: int = 0) -> ModaVerseLite:
    """A fresh aligned model on the profile's LLM (LoRA and projections initialised from ``seed``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = get_profile(profile)
    path = p.checkpoint("llm")
    torch.manual_seed(seed)
    llm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return ModaVerseLite(llm, tokenizer, feature_dims(p), p.video_tokens, p.video_frames, p.lora,
                         media_tokens=p.media_tokens)


def examples_for(model: ModaVerseLite, records, rows, with_targets: bool = True):
    return [model.tokenize(r.instruction, *(row or (None, -1)), r.response() if with_targets else None)
            for r, row in zip(records, rows)]


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


# ---- checkpoints ---------------------------------------------------------------------------------------------
def _optimizer_tensors(optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors = {f"{i}.{k}": v.detach().cpu().contiguous()
               for i, s in state["state"].items() for k, v in s.items() if torch.is_tensor(v)}
    return tensors, {"param_groups": state["param_groups"]}


def save_checkpoint(model: ModaVerseLite, out_dir: str | Path, info: dict, optimizer=None) -> Path:
    """Write what was trained into ``out_dir/checkpoint`` atomically; returns the folder."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final, tmp, old = out_dir / CHECKPOINT, out_dir / f".{CHECKPOINT}.tmp", out_dir / f".{CHECKPOINT}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    model.llm.save_pretrained(tmp / "adapter", save_embedding_layers=False)  # new-token rows only, not the table
    model.tokenizer.save_pretrained(tmp / "tokenizer")
    save_file({k: v.detach().cpu().contiguous() for k, v in model.projections.state_dict().items()},
              tmp / "projections.safetensors")
    if optimizer is not None:
        tensors, groups = _optimizer_tensors(optimizer)
        save_file(tensors, tmp / "optimizer.safetensors")
        (tmp / "optimizer.json").write_text(json.dumps(groups))
    (tmp / "modaverse.json").write_text(json.dumps(info, indent=2, default=str))
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)  # the last good checkpoint is `final`, or `.old` if we stop right before this line
    shutil.rmtree(old, ignore_errors=True)
    return final


def _checkpoint_dir(path: str | Path) -> Path:
    path = Path(path)
    for candidate in (path, path / CHECKPOINT, path / f".{CHECKPOINT}.old"):
        if (candidate / "modaverse.json").exists():
            return candidate
    raise CheckpointError(f"{path}: no checkpoint here (expected modaverse.json in it or in {path / CHECKPOINT}); "
                          "train one with `python -m modaverse_lite train --out DIR`")


def load_checkpoint(path: str | Path) -> tuple[ModaVerseLite, dict]:
    """A trained model from a checkpoint folder (or the run folder holding it), and its saved settings."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ckpt = _checkpoint_dir(path)
    info = json.loads((ckpt / "modaverse.json").read_text())
    llm_path = info["llm"]
    if not Path(llm_path).exists() and info["profile"] == "tiny":
        llm_path = get_profile("tiny").checkpoint("llm")  # the zoo moved (new cache dir): rebuild it
    try:
        llm = AutoModelForCausalLM.from_pretrained(llm_path, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(ckpt / "tokenizer")
        llm.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        model = ModaVerseLite(llm, tokenizer, info["feature_dims"], info["video_tokens"], info["video_frames"],
                              LoraSettings(**{**info["lora"], "target_modules": tuple(info["lora"]["target_modules"])}),
                              add_tokens=False, media_tokens=info.get("media_tokens", 1))
        set_peft_model_state_dict(model.llm, load_file(ckpt / "adapter" / "adapter_model.safetensors"))
        model.projections.load_state_dict(load_file(ckpt / "projections.safetensors"))
    except (OSError, KeyError, RuntimeError) as err:
        raise CheckpointError(f"{ckpt}: cannot load this checkpoint ({err})") from err
    return model.eval(), info


def _load_optimizer(optimizer, ckpt: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(ckpt / "optimizer.safetensors")
    groups = json.loads((ckpt / "optimizer.json").read_text())["param_groups"]
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# ---- evaluation during and after training ---------------------------------------------------------------------
def predict(model: ModaVerseLite, examples, features, batch_size: int = 64, max_new_tokens: int = 24,
            progress: bool = False) -> list[str]:
    model.eval()
    out = []
    for i in tqdm(range(0, len(examples), batch_size), desc="predict", disable=not progress, leave=False):
        out += model.generate(examples[i:i + batch_size], features, max_new_tokens)
    return out


def _eval_set(records, n: int, seed: int) -> list:
    """Up to ``n`` records of each evaluation split, the same ones every time."""
    chosen = []
    for split in EVAL_SPLITS:
        part = [r for r in records if r.split == split]
        g = torch.Generator().manual_seed(seed)
        chosen += [part[i] for i in torch.randperm(len(part), generator=g)[:n].tolist()]
    return chosen


# ---- the loop --------------------------------------------------------------------------------------------------
def mixed_precision(setting: str = "auto") -> str:
    """accelerate's ``mixed_precision`` for a setting: "auto" is bf16 on a GPU that supports it, else fp16 on a GPU,
    and none on a CPU."""
    if setting != "auto":
        return setting
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def align_train(config: TrainConfig) -> TrainResult:
    """Train projections + LoRA + new-token rows on an instruction dataset; returns history, metrics, checkpoint."""
    from accelerate import Accelerator
    from transformers import get_cosine_schedule_with_warmup

    p = get_profile(config.profile)
    steps, batch_size, lr = config.setting("steps"), config.setting("batch_size"), config.setting("lr")
    grad_accum, eval_every = config.setting("grad_accum"), config.setting("eval_every")
    data_dir = Path(config.data_dir) if config.data_dir else default_dataset(p, config.seed)
    records = ds.read_records(data_dir)
    train = [r for r in records if r.split == "train"]
    if not train:
        raise DatasetError(f"{data_dir}: no records in the 'train' split")
    evaluation = _eval_set(records, config.eval_items, config.seed)
    periodic = _eval_set(records, max(1, config.eval_items // 3), config.seed)
    features, rows = media_features(train + evaluation, data_dir, p, progress=config.progress)

    start, history, evals, resumed = 0, [], [], False
    ckpt_dir = Path(config.out_dir) / CHECKPOINT
    if config.resume and (ckpt_dir / "modaverse.json").exists():  # continue this run: its model, step, history
        saved = json.loads((ckpt_dir / "modaverse.json").read_text())
        if saved.get("seed") != config.seed or saved.get("data_dir") != str(data_dir):
            raise CheckpointError(f"{ckpt_dir} belongs to another run (seed {saved.get('seed')}, data "
                                  f"{saved.get('data_dir')}); use another --out or resume=False")
        model, _ = load_checkpoint(ckpt_dir)
        start, history, evals = saved["step"], [tuple(h) for h in saved["history"]], saved.get("evals", [])
        resumed = (ckpt_dir / "optimizer.safetensors").exists()
    else:
        model = build_model(p, config.seed)
    train_examples = examples_for(model, train, rows[:len(train)])
    eval_examples = examples_for(model, evaluation, rows[len(train):], with_targets=False)
    periodic_examples = [eval_examples[evaluation.index(r)] for r in periodic]

    accelerator = Accelerator(mixed_precision=mixed_precision(config.mixed_precision),
                              gradient_accumulation_steps=grad_accum)
    trainable = [q for q in model.parameters() if q.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=config.setting("weight_decay"))
    if resumed:
        _load_optimizer(optimizer, ckpt_dir)
    for group in optimizer.param_groups:  # the schedule starts from here when resuming (a fresh run sets it itself)
        group.setdefault("initial_lr", lr)
    scheduler = get_cosine_schedule_with_warmup(optimizer, config.setting("warmup_steps") * grad_accum,
                                                steps * grad_accum, last_epoch=start * grad_accum - 1)
    info = {"profile": p.name, "llm": p.checkpoint("llm"), "image_encoder": p.checkpoint("image_encoder"),
            "audio_encoder": p.checkpoint("audio_encoder"), "feature_dims": model.feature_dims,
            "video_tokens": model.video_tokens, "video_frames": model.video_frames,
            "media_tokens": model.media_tokens, "lora": asdict(p.lora),
            "seed": config.seed, "steps": steps,
            "batch_size": batch_size, "lr": lr, "data_dir": str(data_dir), "step": 0, "history": []}

    loader = torch.utils.data.DataLoader(range(len(train_examples)), collate_fn=lambda idx: idx,
                                         batch_sampler=StepBatches(len(train_examples), batch_size, config.seed,
                                                                   start * grad_accum, steps * grad_accum))
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    unwrapped = accelerator.unwrap_model(model)
    features = {m: f.to(accelerator.device) for m, f in features.items()}

    def evaluate_now(examples, subset) -> dict:
        predictions = predict(unwrapped, examples, features, max_new_tokens=config.setting("max_new_tokens"))
        return summarise(subset, predictions)

    began, step, running = time.perf_counter(), start, []
    seconds = 0.0
    bar = tqdm(total=steps, initial=start, desc="align-train", disable=not config.progress)
    model.train()
    for micro, idx in enumerate(loader):
        torch.manual_seed(config.seed * 100_003 + start * grad_accum + micro)  # dropout, by step: resumable
        with accelerator.accumulate(model):
            with accelerator.autocast():  # bf16/fp16 on a GPU (`loss` is not `forward`, so not wrapped by prepare)
                loss = unwrapped.loss([train_examples[i] for i in idx], features)
            accelerator.backward(loss)
            if accelerator.sync_gradients and config.setting("max_grad_norm"):
                accelerator.clip_grad_norm_(trainable, config.setting("max_grad_norm"))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        running.append(loss.item())
        if not accelerator.sync_gradients:
            continue
        step += 1
        history.append((step, round(sum(running) / len(running), 5)))
        running = []
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1][1]:.3f}")
        if step % eval_every == 0 or step == steps:
            seconds += time.perf_counter() - began
            s = evaluate_now(periodic_examples, periodic)["overall"]
            evals.append({"step": step, "routing": s["routing"], "exact": s["exact"]})
            if accelerator.is_main_process:
                save_checkpoint(unwrapped, config.out_dir, {**info, "step": step, "history": history,
                                                           "evals": evals}, optimizer)
            model.train()
            began = time.perf_counter()
    bar.close()
    seconds += time.perf_counter() - began
    metrics = evaluate_now(eval_examples, evaluation) if evaluation else {}
    if accelerator.is_main_process:
        final = save_checkpoint(unwrapped, config.out_dir, {**info, "step": step, "history": history,
                                                           "evals": evals, "metrics": metrics}, optimizer)
    else:
        final = ckpt_dir
    return TrainResult(final, history, evals, metrics, round(seconds, 2), step, unwrapped.eval())

