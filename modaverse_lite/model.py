"""The aligned model: an input side per modality + media tokens + an adapted LLM, and its checkpoint.

ModaVerse's input side, in one picture::

    User: <Media> [p(e)] </Media> Draw what this sound looks like.
    Assistant: Modality: [IMAGE] Prompt: a red circle</s>
                  ▲                └─────── the only tokens in the loss ───────┘
              p = projection of the frozen embedding e (a video: one or more ordered tokens)

Nothing maps the LLM's *outputs* back into a generator's feature space: the answer is text (a meta-response),
and a text-to-X generator reads it. That is the "I/O alignment at the level of natural language".

What trains: the input side (``aligners``: a linear projection per modality), the LLM adapter (LoRA on the
attention) and the rows of the two new tokens ``<Media>`` and ``</Media>``. Everything else stays frozen.
``build_inputs`` is where text and media meet; ``save_pretrained`` / ``from_pretrained`` keep only what was trained.
Other input sides and adapters (LaVIN's, full fine-tuning) are chosen by name in the profile (``aligners``); an
adapter that routes by modality is told which rows hold media around each LLM call (``routing``).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import files, zoo
from .aligners import ADAPTERS, INPUT_SIDES, feature_kind
from .encode import feature_dims
from .errors import CheckpointError
from .profiles import LoraSettings, Profile, get_profile

MEDIA_START, MEDIA_END = "<Media>", "</Media>"
USER, ASSISTANT = "User:", "\nAssistant:"  # the plain chat format, for an LLM without a chat template
_MEDIA_MARK = "\ue000"  # where the media go in a chat template's text (a private-use character no text holds)
CHECKPOINT = "checkpoint"  # the checkpoint folder inside a run folder
INFO_FILE = "modaverse.json"  # the model's configuration and the run's settings and history
SLOT = -1  # in ``ModelInputs.token_ids``: a position filled by a projected media embedding
EMBEDDING_MULTIPLE = 64  # an embedding table that must grow grows to a multiple of this (GPU-friendly shapes)
#: Plain greedy decoding, whatever the LLM's own ``generation_config`` says (an instruct model's sampling settings
#: and repetition penalty would otherwise apply: a meta-response repeats its caption words on purpose).
GREEDY = dict(do_sample=False, num_beams=1, repetition_penalty=1.0, no_repeat_ngram_size=0, temperature=1.0,
              top_p=1.0, top_k=50)


@dataclass(frozen=True)
class ModelConfig:
    """Everything that decides the model's shape; saved in every checkpoint and read back by ``from_pretrained``."""

    llm: str  # the base LLM: a hub id or a local folder
    feature_dims: dict[str, int]  # embedding width of each modality's frozen encoder
    media_tokens: int = 1  # LLM tokens an image or a sound becomes
    video_tokens: int = 4  # LLM tokens a clip becomes (ordered groups of frames)
    video_frames: int = 8  # frames per clip
    lora: LoraSettings = field(default_factory=LoraSettings)
    aligner: str = "linear"  # the input side, a key of aligners.INPUT_SIDES
    adapter: str = "lora"  # the LLM adapter, a key of aligners.ADAPTERS
    llm_reference: str = ""  # the profile's reference for ``llm`` ("zoo:llm"): rebuilt from it if ``llm`` is gone

    @property
    def feature_kind(self) -> str:
        """What the input side reads: ``"pooled"`` embeddings or ``"tokens"`` (``encode.record_features(kind=)``)."""
        return feature_kind(self.aligner)

    @classmethod
    def from_profile(cls, profile: str | Profile = "auto") -> ModelConfig:
        """The configuration a profile asks for (loads its encoders once to read their widths)."""
        p = get_profile(profile)
        return cls(llm=zoo.checkpoint(p, "llm"), feature_dims=feature_dims(p), media_tokens=p.media_tokens,
                   video_tokens=p.video_tokens, video_frames=p.video_frames, lora=p.lora, aligner=p.aligner,
                   adapter=p.adapter, llm_reference=p.reference("llm"))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: object, where: str = "model config") -> ModelConfig:
        """A config from ``to_dict``'s output. Total: a missing or unknown field, a value of the wrong type or one
        the model cannot be built with is a CheckpointError naming ``where`` and the field, never a TypeError."""
        def bad(name: str, problem: str) -> CheckpointError:
            return CheckpointError(f"{where}: {name} {problem}; the checkpoint is damaged: train it again")

        if not isinstance(obj, dict):
            raise CheckpointError(f"{where}: expected a JSON object (the model's configuration), got "
                                  f"{type(obj).__name__}; the checkpoint is damaged: train it again")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        missing = [k for k in ("llm", "feature_dims") if k not in obj]
        if unknown or missing:
            raise CheckpointError(f"{where}: unknown fields {unknown} / missing fields {missing}")
        values = {f.name: f.default for f in fields(cls) if f.name != "lora"} | dict(obj)
        for name in ("llm", "aligner", "adapter", "llm_reference"):
            if not isinstance(values[name], str):
                raise bad(name, f"must be a string, got {values[name]!r}")
        if not values["llm"]:
            raise bad("llm", "is empty (it names the base LLM)")
        dims = values["feature_dims"]
        if not isinstance(dims, dict) or not dims or not all(map(_positive_int, dims.values())):
            raise bad("feature_dims", f"must map each modality to a positive integer width, got {dims!r}")
        for name in ("media_tokens", "video_tokens", "video_frames"):
            if not _positive_int(values[name]):
                raise bad(name, f"must be a positive integer, got {values[name]!r}")
        if values["video_frames"] > 1 and values["video_frames"] % values["video_tokens"]:
            raise bad("video_tokens", f"{values['video_tokens']} does not divide video_frames "
                                      f"{values['video_frames']} into equal groups")
        for name, table in (("aligner", INPUT_SIDES), ("adapter", ADAPTERS)):
            if values[name] not in table:
                raise bad(name, f"{values[name]!r} is unknown; known: {sorted(table)}")
        values["lora"] = _lora_settings(values.get("lora", {}), bad)
        return cls(**values)


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _lora_settings(obj: object, bad) -> LoraSettings:
    """``LoraSettings`` from its JSON form, every field checked (``bad(field, problem)`` makes the error)."""
    if not isinstance(obj, dict) or set(obj) - {f.name for f in fields(LoraSettings)}:
        raise bad("lora", f"must be an object with some of r, alpha, dropout, target_modules; got {obj!r}")
    settings = {f.name: f.default for f in fields(LoraSettings)} | obj
    modules = settings["target_modules"]
    if not (_positive_int(settings["r"]) and _positive_int(settings["alpha"])
            and isinstance(settings["dropout"], (int, float)) and 0 <= settings["dropout"] < 1
            and isinstance(modules, (list, tuple)) and modules and all(isinstance(m, str) for m in modules)):
        raise bad("lora", f"needs r and alpha positive integers, dropout in [0, 1) and target_modules a list of "
                          f"module names; got {obj!r}")
    return LoraSettings(**{**settings, "target_modules": tuple(modules)})


@dataclass
class Example:
    """One instruction, tokenised once: ids before the media, the first medium (modality, row in its feature
    table), ids after the media, and the target meta-response ids (empty at inference). A request with several
    media holds the later ones in ``more``; ``media`` lists them all, in the order they are spliced in."""

    head: list[int]
    modality: str | None
    row: int
    tail: list[int]
    target: list[int]
    tag: int = 0  # how many leading target ids name the output modality ("Modality: [IMAGE]"): see ``loss``
    more: tuple[tuple[str, int], ...] = ()  # the second and later media: (modality, row), in order
    ask: int = 0  # how many leading ids of ``tail`` spell the request's words (the rest: the assistant's prompt)

    @property
    def media(self) -> list[tuple[str, int]]:
        """Every medium of the instruction, in order: ``[("image", 3), ("audio", 0)]``; [] for text only."""
        return [(self.modality, self.row), *self.more] if self.modality is not None else []


@dataclass
class ModelInputs:
    """What the LLM reads for a batch. ``token_ids`` holds ``SLOT`` where a projected media embedding sits and
    ``pad_token_id`` at padding; ``labels`` are the target ids with everything else -100 (not in the loss)."""

    inputs_embeds: torch.Tensor  # [B, L, H]
    attention_mask: torch.Tensor  # [B, L]
    position_ids: torch.Tensor  # [B, L]
    labels: torch.Tensor  # [B, L]
    token_ids: torch.Tensor  # [B, L]


class ModaVerseLite(nn.Module):
    """The input side + the adapted LLM. ``loss`` for training, ``generate`` for inference."""

    #: tokens a variant adds beside ``<Media>`` and ``</Media>``, their rows trained too (``latent.py``: the signal
    #: tokens of NExT-GPT's output side)
    extra_tokens: tuple[str, ...] = ()

    def __init__(self, config: ModelConfig, llm, tokenizer, add_tokens: bool = True):
        super().__init__()
        new_tokens = [MEDIA_START, MEDIA_END, *self.extra_tokens]
        if add_tokens:  # a fresh model: add <Media>, </Media> and grow the embedding table
            tokenizer.add_special_tokens({"additional_special_tokens": new_tokens})
            fit_embeddings(llm, len(tokenizer))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.config, self.tokenizer = config, tokenizer
        self.media_ids = tokenizer.convert_tokens_to_ids([MEDIA_START, MEDIA_END])
        self.adapter = ADAPTERS[config.adapter]
        self.llm = self.adapter.apply(llm, config.lora, tokenizer.convert_tokens_to_ids(new_tokens))
        table = llm.get_input_embeddings().weight
        hidden = table.shape[1]
        context = dict(tokenizer=tokenizer, embed_tokens=lambda ids: self.llm.get_input_embeddings()(ids),
                       embedding_rms=table.detach().float().pow(2).mean().sqrt().item())
        self.projections = INPUT_SIDES[config.aligner](config.feature_dims, hidden, config.media_tokens,
                                                       config.video_tokens, config.video_frames, **context)

    @property
    def feature_dims(self) -> dict[str, int]:
        return dict(self.config.feature_dims)

    @property
    def video_tokens(self) -> int:
        return self.config.video_tokens

    @property
    def media_tokens(self) -> int:
        return self.config.media_tokens

    # ---- text → examples -----------------------------------------------------------------------------------
    def tokenize(self, instruction: str, modality: str | None = None, row: int = -1,
                 response: str | None = None, more: tuple[tuple[str, int], ...] = ()) -> Example:
        """Tokenise one instruction (and its target meta-response) once, ahead of training. ``modality`` and
        ``row`` name its first medium, ``more`` the later ones (each gets its own ``<Media> … </Media>`` block).

        An instruct LLM's tokenizer brings its chat template (``apply_chat_template``): the media go at the start
        of the user's turn and the answer follows the template's assistant prompt. A tokenizer without one (the
        tiny LLM's) gets the plain ``User: … Assistant: …`` format.
        """
        def ids(text: str) -> list[int]:
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]

        eos = [self.tokenizer.eos_token_id]
        lead = " " if not getattr(self.tokenizer, "chat_template", None) else ""  # the plain format's space
        target = ids(lead + response) + eos if response is not None else []
        tag = ids(lead + response.split(" Prompt:")[0]) if response is not None else []
        tag = len(tag) if target[:len(tag)] == tag else 0  # the modality tag's ids, where they tokenise apart
        if lead == "":
            turn = self.tokenizer.apply_chat_template([{"role": "user", "content": _MEDIA_MARK + instruction}],
                                                      tokenize=False, add_generation_prompt=True)
            before, after = turn.split(_MEDIA_MARK, 1)
            head, tail, words = ids(before), ids(after), ids(instruction)
        else:
            head, tail, words = ids(USER), ids(" " + instruction + ASSISTANT), ids(" " + instruction)
        ask = len(words) if tail[:len(words)] == words else 0  # where the request's ids tokenise apart
        return Example(head, modality, row, tail, target, tag, tuple(more), ask)

    def examples(self, records, rows, with_targets: bool = True) -> list[Example]:
        """One ``Example`` per record; ``rows`` are the records' ``(modality, row)`` in the feature tables (or None,
        or a tuple of such pairs for a record with several media) as ``encode.record_features`` gives them."""
        out = []
        for r, row in zip(records, rows):
            media = media_rows(row)
            first = media[0] if media else (None, -1)
            out.append(self.tokenize(r.instruction, *first, self.answer_text(r) if with_targets else None,
                                     tuple(media[1:])))
        return out

    def answer_text(self, record) -> str:
        """What the model is trained to answer ``record``: its meta-response (a variant may answer otherwise)."""
        return record.response()

    # ---- examples → input embeddings ------------------------------------------------------------------------
    def build_inputs(self, examples: list[Example], features: dict[str, torch.Tensor],
                     left_pad: bool = False) -> ModelInputs:
        """Padded input embeddings for a batch, with the projected media between ``<Media>`` and ``</Media>``.

        One embedding lookup for every text token of the batch, one input-side call per modality; the projected
        media tokens then fill the slots. Right padding for training, left padding for generation (so every row's
        answer starts at the same position).
        """
        rows, prompt_lens, kinds = [], [], []  # kinds: the modality of each slot, row by row
        for ex in examples:
            media, kind = [], []
            for modality, _ in ex.media:  # one <Media> … </Media> block per medium, in order
                n = self.projections.tokens(modality)
                media += [self.media_ids[0], *[SLOT] * n, self.media_ids[1]]
                kind += [modality] * n
            prompt = ex.head + media + ex.tail
            rows.append(prompt + ex.target)
            prompt_lens.append(len(prompt))
            kinds.append(kind)
        width, device = max(len(r) for r in rows), next(self.parameters()).device
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        for i, (row, prompt_len) in enumerate(zip(rows, prompt_lens)):
            start = width - len(row) if left_pad else 0
            ids[i, start:start + len(row)] = torch.tensor(row)
            mask[i, start:start + len(row)] = 1
            labels[i, start + prompt_len:start + len(row)] = ids[i, start + prompt_len:start + len(row)]
        ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
        slots = ids == SLOT
        embeds = self.llm.get_input_embeddings()(ids.masked_fill(slots, self.tokenizer.pad_token_id))
        media = torch.zeros_like(embeds)
        several = any(ex.more for ex in examples)
        for modality in sorted({m for ex in examples for m, _ in ex.media}):
            which = [i for i, ex in enumerate(examples) if any(m == modality for m, _ in ex.media)]
            table = features[modality][[r for i in which for m, r in examples[i].media if m == modality]].to(device)
            projected = self.projections(modality, table).to(embeds.dtype)  # [n, tokens, H]
            fill = slots[which]
            if several:  # only this modality's slots: a row may hold another medium's too
                fill = fill.clone()
                for k, i in enumerate(which):
                    fill[k, fill[k].nonzero()[:, 0]] = torch.tensor([m == modality for m in kinds[i]], device=device)
            media[which] = media[which].masked_scatter(fill.unsqueeze(-1), projected)
        embeds = torch.where(slots.unsqueeze(-1), media, embeds)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        return ModelInputs(embeds, mask, positions, labels, ids)

    def forward(self, examples: list[Example], features: dict[str, torch.Tensor], tag_weight: float = 1.0
                ) -> torch.Tensor:
        """The training loss (``loss``). Training calls it through the module ``accelerate`` prepared: wrapped in
        DistributedDataParallel, a call of the wrapper (not of ``loss`` itself) is what averages the gradients of
        several processes in backward."""
        return self.loss(examples, features, tag_weight)

    def loss(self, examples: list[Example], features: dict[str, torch.Tensor], tag_weight: float = 1.0
             ) -> torch.Tensor:
        """Mean next-token loss over the target meta-responses of a batch.

        The same loss as ``llm(..., labels=labels).loss``, but the output layer and softmax run only at the
        positions that predict a target token (about a third of them), not at every prompt and padding position.
        With ``tag_weight`` ≠ 1 it is a weighted mean in which the ids of the modality tag (``Example.tag``)
        count ``tag_weight`` times: the routing decision is one word of a dozen, yet a wrong one loses the whole
        answer.
        """
        inputs, hidden = self.hidden_states(examples, features)
        return self.token_loss(inputs, hidden, examples, tag_weight)

    def hidden_states(self, examples: list[Example], features: dict[str, torch.Tensor]
                      ) -> tuple[ModelInputs, torch.Tensor]:
        """The batch's inputs (right-padded, with targets) and the LLM's last hidden states ``[B, L, H]``."""
        inputs = self.build_inputs(examples, features, left_pad=False)
        with self.routing(examples):
            hidden = self._causal_lm.model(inputs_embeds=inputs.inputs_embeds, attention_mask=inputs.attention_mask,
                                           position_ids=inputs.position_ids, use_cache=False).last_hidden_state
        return inputs, hidden

    @property
    def _causal_lm(self):
        return self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm  # peft or not

    def token_loss(self, inputs: ModelInputs, hidden: torch.Tensor, examples: list[Example],
                   tag_weight: float = 1.0) -> torch.Tensor:
        """``loss`` from the hidden states ``hidden_states`` gave (the next-token part of any variant's loss)."""
        targets = inputs.labels[:, 1:]
        scored = targets != -100  # position t predicts token t + 1
        logits = self._causal_lm.lm_head(hidden[:, :-1][scored])
        if tag_weight == 1.0:
            return F.cross_entropy(logits.float(), targets[scored])
        losses = F.cross_entropy(logits.float(), targets[scored], reduction="none")
        rank = scored.long().cumsum(1)  # 1 at a row's first target id, 2 at its second, …
        tags = torch.tensor([ex.tag for ex in examples], device=rank.device)[:, None]
        weights = torch.where(rank <= tags, tag_weight, 1.0)[scored]
        return (losses * weights).sum() / weights.sum()

    @torch.no_grad()
    def generate(self, examples: list[Example], features: dict[str, torch.Tensor],
                 max_new_tokens: int = 24) -> list[str]:
        """Greedy meta-responses for a batch of examples (their targets, if any, are ignored)."""
        out = self._generate_ids(examples, features, max_new_tokens)
        return [text.strip() for text in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def _generate_ids(self, examples: list[Example], features: dict[str, torch.Tensor], max_new_tokens: int
                      ) -> torch.Tensor:
        """The greedy answer's token ids ``[B, new]`` (padded after an end of text)."""
        prompts = [Example(ex.head, ex.modality, ex.row, ex.tail, [], more=ex.more) for ex in examples]
        inputs = self.build_inputs(prompts, features, left_pad=True)
        with self.routing(prompts):
            return self.llm.generate(inputs_embeds=inputs.inputs_embeds, attention_mask=inputs.attention_mask,
                                     max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id,
                                     eos_token_id=self.tokenizer.eos_token_id, **GREEDY)

    def routing(self, examples: list[Example]):
        """The adapter's ``routing`` context for a batch (which rows hold media), if it has one (MoMA does)."""
        routing = getattr(self.adapter, "routing", None)
        return routing(self.llm, [ex.modality is not None for ex in examples]) if routing else contextlib.nullcontext()

    def parameter_counts(self) -> dict[str, int]:
        """Trainable and total parameters, by part — the table notebook 02 shows."""
        def count(params, trainable_only):
            return sum(p.numel() for p in params if p.requires_grad or not trainable_only)

        llm_params = list(self.llm.parameters())
        proj_params = list(self.projections.parameters())
        return {"projections (trainable)": count(proj_params, True),
                "LLM adapter + new-token rows (trainable)": count(llm_params, True),
                "LLM frozen": count(llm_params, False) - count(llm_params, True),
                "total": count(proj_params + llm_params, False)}

    # ---- the checkpoint ---------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, info: dict | None = None, extra=None) -> Path:
        """Write what was trained into ``directory``, atomically (``files.atomic_dir``); returns the folder.

        The folder holds the adapter, the projections (safetensors), the tokenizer with its new tokens and
        ``modaverse.json`` (this model's ``ModelConfig`` under ``"model"``, beside ``info``). ``extra(folder)``
        may add files of its own to the same swap (training adds the optimizer state).
        """
        from safetensors.torch import save_file

        with files.atomic_dir(directory) as tmp:
            self.adapter.save(self.llm, tmp)
            self.tokenizer.save_pretrained(tmp / "tokenizer")
            save_file({k: v.detach().cpu().contiguous() for k, v in self.projections.state_dict().items()},
                      tmp / "projections.safetensors")
            if extra is not None:
                extra(tmp)
            (tmp / INFO_FILE).write_text(json.dumps({**(info or {}), "model": self.config.to_dict()}, indent=2,
                                                    default=str))
        return Path(directory)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> ModaVerseLite:
        """A trained model from a checkpoint folder (or the run folder holding it), in eval mode.

        Every part is checked as it is read: a missing, truncated or mismatched part is a CheckpointError naming
        the folder and the part. Weights are read only with safetensors, which never runs code from the file.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        ckpt = find_checkpoint(path)
        config = ModelConfig.from_dict(checkpoint_info(ckpt).get("model"), f"{ckpt / INFO_FILE} ('model')")
        llm_path = config.llm
        if not Path(llm_path).exists() and config.llm_reference.startswith("zoo:"):
            llm_path = str(zoo.ensure(config.llm_reference[4:]))  # the zoo moved (a new cache): rebuild it
        try:
            llm = AutoModelForCausalLM.from_pretrained(llm_path, dtype=torch.float32)
        except Exception as err:  # transformers raises OSError, ValueError, … for a missing or broken model
            raise CheckpointError(f"{ckpt}: its base LLM {llm_path} ('llm' in {INFO_FILE}) cannot be loaded ({err}); "
                                  "build it again (`python -m modaverse_lite zoo`) or train the checkpoint again"
                                  ) from err
        tokenizer = _load_tokenizer(ckpt, AutoTokenizer)
        try:
            fit_embeddings(llm, len(tokenizer))
            model = cls(config, llm, tokenizer, add_tokens=False)
        except (ValueError, RuntimeError) as err:  # e.g. peft: a target module the LLM does not have
            raise CheckpointError(f"{ckpt}: the model in {INFO_FILE} cannot be built on {llm_path} ({err}); "
                                  "train the checkpoint again") from err
        model.adapter.load(model.llm, ckpt)
        try:
            model.projections.load_state_dict(read_tensors(ckpt / "projections.safetensors"))
        except RuntimeError as err:  # missing, unexpected or misshapen weights
            raise CheckpointError(f"{ckpt}: projections.safetensors does not fit the model in {INFO_FILE} ({err}); "
                                  "the checkpoint is damaged: train it again") from err
        return model.eval()


def media_rows(row) -> list[tuple[str, int]]:
    """A record's media rows as ``encode.record_features`` gives them — None, ``(modality, row)`` or a tuple of such
    pairs — as a list of ``(modality, row)`` in splicing order."""
    if row is None:
        return []
    return [tuple(row)] if isinstance(row[0], str) else [tuple(r) for r in row]


def fit_embeddings(llm, n_tokens: int) -> None:
    """Make room for ``n_tokens`` ids in the LLM's (tied) embedding table, never shrinking it.

    A hub LLM's table is often larger than its tokenizer: Qwen 2.5 has 151,936 rows for 151,665 tokens, so its two
    new media tokens fit in rows it already has, and the table keeps its shape. A table that must grow grows to a
    multiple of ``EMBEDDING_MULTIPLE``; the rows it gains are drawn from a fixed seed, so the model built for
    training and the one ``from_pretrained`` rebuilds have the same rows (the trained media rows are then loaded
    over theirs).
    """
    if n_tokens <= llm.get_input_embeddings().weight.shape[0]:
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        llm.resize_token_embeddings(n_tokens, pad_to_multiple_of=EMBEDDING_MULTIPLE, mean_resizing=False)


def read_tensors(file: Path) -> dict[str, torch.Tensor]:
    """The tensors in a safetensors ``file`` of a checkpoint. safetensors reads a header and raw numbers, never
    code (a pickle put in its place is refused, not run); anything unreadable is a CheckpointError naming it."""
    from safetensors.torch import load_file

    if not file.is_file():
        raise CheckpointError(f"{file.parent}: {file.name} is missing; the checkpoint is incomplete: train it again")
    try:
        return load_file(file)
    except Exception as err:  # safetensors' SafetensorError: truncated, not safetensors at all, …
        raise CheckpointError(f"{file.parent}: {file.name} is not a readable safetensors file ({err}); the "
                              "checkpoint is damaged: train it again") from err


def _load_tokenizer(ckpt: Path, auto_tokenizer):
    """The checkpoint's tokenizer (with ``<Media>`` and ``</Media>``); CheckpointError if it is missing or broken."""
    folder = ckpt / "tokenizer"
    if not folder.is_dir():  # checked first: a path that does not exist would be taken for a hub id
        raise CheckpointError(f"{ckpt}: tokenizer/ is missing; the checkpoint is incomplete: train it again")
    try:
        tokenizer = auto_tokenizer.from_pretrained(folder)
    except Exception as err:  # tokenizers raises a bare Exception for a broken tokenizer.json
        raise CheckpointError(f"{ckpt}: tokenizer/ cannot be loaded ({err}); the checkpoint is damaged: train it "
                              "again") from err
    missing = [t for t in (MEDIA_START, MEDIA_END) if t not in tokenizer.get_vocab()]
    if missing:
        raise CheckpointError(f"{ckpt}: tokenizer/ lacks the media tokens {missing} (it is not the one this model "
                              "was trained with); train the checkpoint again")
    return tokenizer


def find_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint folder at ``path``: itself, its ``checkpoint/``, or the last good one kept during a swap."""
    path = Path(path)
    for candidate in (path, path / CHECKPOINT, files.old_dir(path / CHECKPOINT)):
        if (candidate / INFO_FILE).exists():
            return candidate
    raise CheckpointError(f"{path}: no checkpoint here (expected {INFO_FILE} in it or in {path / CHECKPOINT}); "
                          "train one with `python -m modaverse_lite train --out DIR`")


def checkpoint_info(path: str | os.PathLike) -> dict:
    """The ``modaverse.json`` of a checkpoint (or run) folder: the run's settings, history and metrics, and the
    model's configuration under ``"model"``."""
    file = find_checkpoint(path) / INFO_FILE
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{file}: cannot be read ({err}); the checkpoint is damaged: train it again") from err
    if not isinstance(info, dict):
        raise CheckpointError(f"{file}: expected a JSON object, got {type(info).__name__}; the checkpoint is "
                              "damaged: train it again")
    return info


def build_model(profile: str | Profile = "auto", seed: int = 0, cls: type[ModaVerseLite] | None = None,
                **extra) -> ModaVerseLite:
    """A fresh aligned model on the profile's LLM (adapter and projections initialised from ``seed``); ``cls``
    builds a variant instead (``latent.LatentModaVerse``), with its own keyword arguments ``extra``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = ModelConfig.from_profile(profile)
    torch.manual_seed(seed)
    llm = AutoModelForCausalLM.from_pretrained(config.llm, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(config.llm)
    return (cls or ModaVerseLite)(config, llm, tokenizer, **extra)
