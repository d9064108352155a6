"""NExT-GPT's output side, in miniature: signal tokens, output projections and latent alignment.

ModaVerse aligns the LLM's *output* with a generator's *input* in words: the LLM writes a prompt and the generator
reads it. NExT-GPT (Wu et al., arXiv 2309.05519) aligns them in *feature space*::

    User: <Media> [p(e)] </Media> Draw what this sound looks like.
    Assistant: [IMG0][IMG1][IMG2][IMG3]              signal tokens, new rows of the vocabulary
                  │ their last hidden states h [4, H]
                  ▼
     output projection: a small encoder-decoder transformer, Q learned queries  ──▶  c [Q, D]
                  │                                                            ≈ text_encoder("a red circle")
                  ▼
     the generator's denoiser reads c as ``prompt_embeds``: no prompt, no tokenizer in between

Training pulls ``c`` towards what the **generator's own text encoder** gives for the target caption (``Conditioning``):
NExT-GPT's loss is the next-token cross-entropy on the answer (text and signal tokens) plus the per-token Euclidean
distance between ``c`` and that conditioning. The generator is never run while training.

The tiny pipelines of the zoo are untrained, so an image drawn from even a perfect ``c`` would be noise. Here the
latent side is scored as a generator *trained on the world's captions* would read it: ``c`` is decoded to the world
caption whose conditioning is nearest (``LatentModaVerse.decode``), and that caption is drawn by the world renderer
— the same renderer, re-encoder and attribute probes that score the meta-response side. ``Conditioning.pipeline_kwargs``
hands a predicted ``c`` to the real diffusers pipeline as ``prompt_embeds`` all the same.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn as nn

from . import meta, world, zoo
from .errors import DatasetError
from .generators import _quiet_loading, load_pipeline
from .model import Example, ModaVerseLite, build_model
from .profiles import Profile, get_profile

MEDIA = meta.MEDIA
#: NExT-GPT has [IMG0..3], [AUD0..7] and [VID0..23]; four of each is enough for the tiny world's captions.
SIGNALS = {"image": ("IMG", 4), "audio": ("AUD", 4), "video": ("VID", 4)}
#: the tiny profile draws with the world renderers; its latent targets come from the zoo's tiny pipelines
_ZOO_PIPELINES = {"image": "zoo:sd", "audio": "zoo:audioldm2", "video": "zoo:text2video"}


def signal_tokens(modality: str) -> list[str]:
    """The signal tokens of an output modality, in order: ``["[IMG0]", "[IMG1]", …]``."""
    prefix, n = SIGNALS[modality]
    return [f"[{prefix}{i}]" for i in range(n)]


def world_captions(modality: str) -> list[str]:
    """Every caption the world can give a medium of ``modality`` (unseen combinations included): the captions a
    generator trained on the world would know, and the candidates ``LatentModaVerse.decode`` chooses from."""
    return [world.caption(modality, dict(zip(world.ATTRIBUTES[modality], combo)))
            for combo in world.combinations(modality, "all")]


# ---- the generators' own text encoders ------------------------------------------------------------------------------
def conditioning_checkpoint(profile: str | Profile, modality: str) -> str:
    """The diffusers pipeline whose text encoder gives ``modality``'s latent targets: the profile's generator, or,
    where the profile draws with the world renderer (tiny), the zoo's tiny pipeline of the same kind."""
    ref = get_profile(profile).reference(f"text_to_{modality}")
    if ref == "world":
        ref = _ZOO_PIPELINES[modality]
    return str(zoo.ensure(ref[len("zoo:"):])) if ref.startswith("zoo:") else ref


class Conditioning:
    """What each generator's text encoder makes of a caption: the tensors its denoiser cross-attends to.

    Stable Diffusion and the video pipeline read ``prompt_embeds`` ``[L, D]`` (CLIP's last hidden states); AudioLDM 2
    reads two, the T5 encoder's ``prompt_embeds`` and the ``generated_prompt_embeds`` its GPT-2 writes. Each
    caption is encoded once (``encode_prompt``, the pipeline's own method) and kept.
    """

    def __init__(self, profile: str | Profile = "tiny"):
        self.profile = get_profile(profile)
        self._pipes: dict[str, object] = {}
        self._cache: dict[tuple[str, str], dict[str, torch.Tensor]] = {}

    def pipeline(self, modality: str):
        """The modality's diffusers pipeline, loaded once."""
        if modality not in self._pipes:
            with _quiet_loading(), warnings.catch_warnings():  # as generators.DiffusersGenerator loads it
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
                pipe = load_pipeline(conditioning_checkpoint(self.profile, modality),
                                     getattr(torch, self.profile.dtype))
            pipe = pipe.to(self.profile.device)  # the gpu profile's pipelines in half precision, on the GPU
            pipe.set_progress_bar_config(disable=True)
            self._pipes[modality] = pipe
        return self._pipes[modality]

    @torch.no_grad()
    def __call__(self, modality: str, captions: list[str]) -> dict[str, torch.Tensor]:
        """``{name: [len(captions), L, D]}``: the conditioning of each caption."""
        todo = list(dict.fromkeys(c for c in captions if (modality, c) not in self._cache))
        if todo:
            pipe = self.pipeline(modality)
            if type(pipe).__name__ == "AudioLDM2Pipeline":
                with warnings.catch_warnings():  # diffusers' own GPT-2 call, as in generators.DiffusersGenerator
                    warnings.filterwarnings("ignore", message=".*past_key_values.*", category=FutureWarning)
                    embeds, _, generated = pipe.encode_prompt(todo, pipe.device, 1, False)
                parts = {"prompt_embeds": embeds, "generated_prompt_embeds": generated}
            else:
                parts = {"prompt_embeds": pipe.encode_prompt(todo, pipe.device, 1, False)[0]}
            for i, caption in enumerate(todo):
                self._cache[modality, caption] = {k: v[i].float().cpu() for k, v in parts.items()}
        rows = [self._cache[modality, c] for c in captions]
        return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}

    def shapes(self, modality: str) -> dict[str, tuple[int, int]]:
        """``{name: (L, D)}`` of the modality's conditioning."""
        return {k: tuple(v.shape[1:]) for k, v in self(modality, [world_captions(modality)[0]]).items()}

    @staticmethod
    def pipeline_kwargs(conditioning: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Arguments that hand a conditioning to its pipeline in place of a prompt (classifier-free guidance off:
        there is no negative prompt to encode)."""
        kwargs = dict(conditioning, guidance_scale=1.0)
        if "generated_prompt_embeds" in conditioning:  # AudioLDM 2 also wants the T5 embeddings' mask
            embeds = conditioning["prompt_embeds"]
            kwargs["attention_mask"] = torch.ones(embeds.shape[:2], dtype=torch.long)
        return kwargs


# ---- the output projection ------------------------------------------------------------------------------------------
class OutputProjection(nn.Module):
    """Signal tokens' hidden states ``[B, K, H]`` → a conditioning ``{name: [B, L, D]}``.

    As NExT-GPT's: the hidden states go through a transformer encoder; ``Q`` learned queries (one per conditioning
    position, ``L`` summed over the conditioning's parts) attend to them through a transformer decoder, and a linear
    head per part maps each query to the text encoder's width.
    """

    def __init__(self, hidden: int, shapes: dict[str, tuple[int, int]], width: int = 64, heads: int = 4,
                 layers: int = 1):
        super().__init__()
        self.shapes = dict(shapes)
        self.inp = nn.Linear(hidden, width)
        self.queries = nn.Parameter(torch.randn(sum(n for n, _ in shapes.values()), width) * 0.02)
        self.transformer = nn.Transformer(d_model=width, nhead=heads, num_encoder_layers=layers,
                                          num_decoder_layers=layers, dim_feedforward=2 * width, dropout=0.0,
                                          batch_first=True)
        self.heads = nn.ModuleDict({name: nn.Linear(width, dim) for name, (_, dim) in shapes.items()})

    def forward(self, signal_hidden: torch.Tensor) -> dict[str, torch.Tensor]:
        queries = self.queries.expand(signal_hidden.shape[0], -1, -1)
        out = self.transformer(self.inp(signal_hidden), queries)
        parts, at = {}, 0
        for name, (n, _) in self.shapes.items():
            parts[name] = self.heads[name](out[:, at:at + n])
            at += n
        return parts


def latent_distance(predicted: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
    """NExT-GPT's alignment loss per item: the Euclidean distance between predicted and target conditioning, per
    position, averaged over positions (and summed over the conditioning's parts): ``[B]``."""
    return sum((predicted[k] - target[k]).norm(dim=-1).mean(-1) for k in target)


# ---- the model ------------------------------------------------------------------------------------------------------
@dataclass
class LatentExample(Example):
    """An ``Example`` whose answer ends in signal tokens: ``output`` is their modality and ``caption`` the target
    caption whose conditioning the output projection must reach (None / "" for a text answer)."""

    output: str | None = None
    caption: str = ""


@dataclass
class Decoded:
    """What the latent side made of one answer: the modality its signal tokens name, the predicted conditioning,
    the nearest world caption and its distance (a text answer: modality None, the text in ``text``)."""

    modality: str | None
    text: str
    conditioning: dict[str, torch.Tensor] | None = None
    caption: str | None = None
    distance: float | None = None


class LatentModaVerse(ModaVerseLite):
    """The same input side and LoRA-tuned LLM, with NExT-GPT's output side instead of the meta-response.

    A media answer is the modality's signal tokens; a text answer stays ``Modality: [TEXT] Prompt: …`` (text is
    text in both designs, so the two are scored alike). ``loss`` adds the latent alignment term; ``generate``
    returns meta-responses decoded from the signal tokens (``decode``), so every evaluation of the package reads
    this model as it reads the other.
    """

    extra_tokens = tuple(t for m in MEDIA for t in signal_tokens(m))

    def __init__(self, config, llm, tokenizer, add_tokens: bool = True, conditioning: Conditioning | None = None):
        super().__init__(config, llm, tokenizer, add_tokens)
        self.conditioning = conditioning or Conditioning(get_profile("tiny"))
        hidden = llm.get_input_embeddings().weight.shape[1]
        self.outputs = nn.ModuleDict({m: OutputProjection(hidden, self.conditioning.shapes(m)) for m in MEDIA})
        self.signal_ids = {m: tokenizer.convert_tokens_to_ids(signal_tokens(m)) for m in MEDIA}
        self._bank = {m: (world_captions(m), self.conditioning(m, world_captions(m))) for m in MEDIA}

    def answer_text(self, record) -> str:
        """The modality's signal tokens for a record whose target is a medium; the meta-response for text."""
        if record.target.then:
            raise DatasetError(f"record {record.id}: the latent side answers with one output; this one asks for "
                               f"{record.target.modalities}")
        if record.target.modality in MEDIA:
            return "".join(signal_tokens(record.target.modality))
        return record.response()

    def examples(self, records, rows, with_targets: bool = True) -> list[LatentExample]:
        """As ``ModaVerseLite.examples``, each marked with the output modality and caption its signal tokens must
        reach (``LatentExample``)."""
        out = []
        for r, ex in zip(records, super().examples(records, rows, with_targets)):
            media_out = with_targets and r.target.modality in MEDIA
            out.append(LatentExample(**vars(ex), output=r.target.modality if media_out else None,
                                     caption=r.target.prompt if media_out else ""))
        return out

    def loss(self, examples: list[Example], features: dict[str, torch.Tensor], tag_weight: float = 1.0
             ) -> torch.Tensor:
        """Next-token cross-entropy on the answers (text and signal tokens) + the mean latent distance of the
        answers that end in signal tokens (``latent_distance``)."""
        inputs, hidden = self.hidden_states(examples, features)
        loss = self.token_loss(inputs, hidden, examples, tag_weight)
        which = [i for i, ex in enumerate(examples) if getattr(ex, "output", None)]
        if not which:
            return loss
        distances = []
        for m in {examples[i].output for i in which}:
            rows = [i for i in which if examples[i].output == m]
            predicted = self._project(m, inputs.token_ids[rows], hidden[rows])
            target = self._targets(m, [examples[i].caption for i in rows], hidden.device)
            distances.append(latent_distance(predicted, target))
        return loss + torch.cat(distances).mean()

    def _project(self, modality: str, token_ids: torch.Tensor, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
        """The output projection of the hidden states at the positions that hold ``modality``'s signal tokens."""
        ids = torch.tensor(self.signal_ids[modality], device=token_ids.device)
        where = torch.isin(token_ids, ids)
        k = len(ids)
        if not bool((where.sum(1) == k).all()):
            raise ValueError(f"every row must hold the {k} {modality} signal tokens once")
        return self.outputs[modality](hidden[where].reshape(len(token_ids), k, -1))

    def _targets(self, modality: str, captions: list[str], device) -> dict[str, torch.Tensor]:
        unknown = sorted(set(captions) - set(self._bank[modality][0]))
        if unknown:
            raise DatasetError(f"the latent side learns the world's {modality} captions only; {unknown[:3]} are not "
                               "among them (latent.world_captions)")
        return {k: v.to(device) for k, v in self.conditioning(modality, captions).items()}

    @torch.no_grad()
    def decode(self, examples: list[Example], features: dict[str, torch.Tensor], max_new_tokens: int = 24
               ) -> list[Decoded]:
        """Answer each example: generate greedily; where the answer starts a modality's signal tokens, read the
        hidden states of the whole group (teacher-forced after what was generated before it), project them, and
        find the nearest world caption to the predicted conditioning."""
        ids = self._generate_ids(examples, features, max_new_tokens)
        decoded: list[Decoded | None] = []
        pending: dict[str, list[tuple[int, LatentExample]]] = {}
        first = {i: m for m in MEDIA for i in self.signal_ids[m]}
        for j, (ex, row) in enumerate(zip(examples, ids.tolist())):
            at = next((k for k, t in enumerate(row) if t in first), None)
            if at is None:
                decoded.append(Decoded(None, self._text(row)))
                continue
            m = first[row[at]]
            forced = Example(ex.head, ex.modality, ex.row, ex.tail, row[:at] + self.signal_ids[m], more=ex.more)
            pending.setdefault(m, []).append((j, forced))
            decoded.append(None)
        for m, items in pending.items():
            inputs, hidden = self.hidden_states([ex for _, ex in items], features)
            predicted = self._project(m, inputs.token_ids, hidden)
            captions, bank = self._bank[m]
            bank = {k: v.to(hidden.device) for k, v in bank.items()}
            distance = sum((predicted[k][:, None] - bank[k][None]).norm(dim=-1).mean(-1) for k in bank)  # [n, C]
            best = distance.argmin(1)
            for n, ((j, _), c, d) in enumerate(zip(items, best.tolist(), distance.min(1).values.tolist())):
                decoded[j] = Decoded(m, "", {k: v[n].cpu() for k, v in predicted.items()}, captions[c], round(d, 4))
        return decoded

    def _text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    @torch.no_grad()
    def generate(self, examples: list[Example], features: dict[str, torch.Tensor], max_new_tokens: int = 24
                 ) -> list[str]:
        """Meta-responses read off the latent side (``decode``): ``Modality: [IMAGE] Prompt: <nearest caption>``
        for signal tokens, the text itself otherwise."""
        return [meta.format_meta(d.modality, d.caption) if d.modality else d.text
                for d in self.decode(examples, features, max_new_tokens)]

    def parameter_counts(self) -> dict[str, int]:
        counts = super().parameter_counts()
        out = sum(p.numel() for p in self.outputs.parameters())
        return {**{k: v for k, v in counts.items() if k != "total"}, "output projections (trainable)": out,
                "total": counts["total"] + out}

    def save_pretrained(self, *args, **kwargs):
        raise NotImplementedError("the latent model lives in memory only (claim.py trains and scores it in one "
                                  "run); the meta-response model is the one with a checkpoint")


def build_latent_model(profile: str | Profile = "tiny", seed: int = 0,
                       conditioning: Conditioning | None = None) -> LatentModaVerse:
    """A fresh latent-output model on the profile's LLM (``model.build_model`` with NExT-GPT's output side)."""
    p = get_profile(profile)
    return build_model(p, seed, cls=LatentModaVerse, conditioning=conditioning or Conditioning(p))


__all__ = ["Conditioning", "Decoded", "LatentExample", "LatentModaVerse", "OutputProjection", "SIGNALS",
           "build_latent_model", "conditioning_checkpoint", "latent_distance", "signal_tokens", "world_captions"]
