"""Profiles: every checkpoint name and every size in one place.

* ``tiny`` — real transformers / diffusers classes with tiny configs, built on this machine by ``zoo.py`` and loaded
  from a local folder by the very ``from_pretrained(path)`` calls that load the real checkpoints. CPU, minutes.
* ``gpu`` — real hub checkpoints for a Colab T4 (16 GB). A teacher swaps a model by editing one line below.
* ``hubshape`` — the gpu profile's settings and code path on a CPU, with hub-shaped checkpoints: each gpu model's
  real config, processor, tokenizer and layout, random weights and fewer layers (``zoo/hubshape.py``). For tests.
* ``demos`` — ``tiny`` with every pair (``pairs="all"``): edits, two media in, two outputs out (``edits.py``).
* ``auto`` — ``gpu`` where CUDA is available, else ``tiny``.

A checkpoint is a hub id (``"openai/clip-vit-base-patch32"``), a local folder in hub layout, or ``"zoo:NAME"``: the
tiny zoo's folder NAME, built on first use (``zoo.checkpoint(profile, role)`` resolves it). Profiles are pure data:
nothing here loads or builds anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .errors import ProfileError

CHECKPOINT_FIELDS = ("image_encoder", "audio_encoder", "llm", "text_to_image", "text_to_audio", "text_to_video")


@dataclass(frozen=True)
class Checkpoints:
    """Which pretrained model fills each role."""

    image_encoder: str  # CLIP family: images and video frames
    audio_encoder: str  # CLAP family
    llm: str  # a causal LM
    text_to_image: str  # diffusers pipelines, or "world" for the world renderers
    text_to_audio: str
    text_to_video: str


@dataclass(frozen=True)
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")  # the paper's default


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 800
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 50
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0  # gradients are clipped to this norm (0: no clipping)
    grad_accum: int = 1
    eval_every: int = 200
    max_new_tokens: int = 24
    tag_weight: float = 1.0  # loss weight of the ids naming the output modality ("Modality: [IMAGE]"); see model.loss
    token_dropout: float = 0.0  # chance that each id of a training request's words is left out (train.drop_tokens)
    eval_items: int = 600  # records of each split scored in the final evaluation (tiny: every one of its 600)
    threads: int = 0  # CPU threads for encoding and training (0: torch's default; $OMP_NUM_THREADS wins if set)


@dataclass(frozen=True)
class Profile:
    name: str
    checkpoints: Checkpoints
    device: str = "cpu"  # "cpu" or "cuda"
    dtype: str = "float32"  # weights of frozen models: "float32", "float16" or "bfloat16"
    video_frames: int = 8  # frames sampled from every clip
    video_tokens: int = 4  # LLM tokens a clip becomes (ordered)
    media_tokens: int = 1  # LLM tokens an image or a sound becomes
    audio_seconds: float = 1.0  # audio longer than this is cut, shorter padded by the encoder
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    dataset_records: int = 12_000  # size of the default instruction dataset
    pairs: str = "default"  # the default dataset's pairs: "default" (instructions.PAIRS) or "all" (the demos too)
    generator_steps: int = 25  # diffusion steps of the diffusers generators
    generator_kwargs: dict[str, dict] = field(default_factory=dict)  # per role: extra pipeline call arguments
    aligner: str = "linear"  # the input side, by name (``aligners.INPUT_SIDES``)
    adapter: str = "lora"  # how the LLM is tuned, by name (``aligners.ADAPTERS``)

    def reference(self, role: str) -> str:
        """The checkpoint reference that fills ``role``, as written above (a hub id, a folder or ``"zoo:NAME"``)."""
        if role not in CHECKPOINT_FIELDS:
            raise ProfileError(f"unknown checkpoint role {role!r}; expected one of {CHECKPOINT_FIELDS}")
        return getattr(self.checkpoints, role)

    def with_(self, **changes) -> Profile:
        """A copy with some settings changed: ``profile.with_(train=TrainSettings(steps=100))``."""
        return replace(self, **changes)


TINY = Profile(
    name="tiny",
    checkpoints=Checkpoints(
        image_encoder="zoo:clip",
        audio_encoder="zoo:clap",
        llm="zoo:llm",
        text_to_image="world",  # the world renderers draw exactly what a world prompt says;
        text_to_audio="world",  # "zoo:sd", "zoo:audioldm2", "zoo:text2video" are the tiny diffusers pipelines
        text_to_video="world",
    ),
    video_tokens=1,  # the tiny LLM reads motion best from one token that sees all frames (docs/NOTES.md)
    lora=LoraSettings(r=32, alpha=64, dropout=0.0),  # rank, steps and dropout as measured in docs/NOTES.md
    # two threads on every machine: the figures do not move with the number of cores (docs/NOTES.md)
    train=TrainSettings(steps=1500, batch_size=64, eval_every=500, tag_weight=3.0, threads=2),
    generator_steps=2,
)

GPU = Profile(
    name="gpu",
    checkpoints=Checkpoints(
        image_encoder="openai/clip-vit-base-patch32",
        audio_encoder="laion/clap-htsat-unfused",
        llm="Qwen/Qwen2.5-0.5B-Instruct",
        text_to_image="stabilityai/sd-turbo",
        text_to_audio="cvssp/audioldm2",
        text_to_video="ali-vilab/text-to-video-ms-1.7b",
    ),
    device="cuda",
    dtype="float16",
    audio_seconds=10.0,  # CLAP HTSAT reads 10 s; AudioLDM 2 writes 5 s clips, judged whole
    lora=LoraSettings(r=16, alpha=32, dropout=0.05),
    train=TrainSettings(steps=1500, batch_size=16, lr=2e-4, warmup_steps=100, grad_accum=2, eval_every=500),
    generator_steps=25,
    generator_kwargs={  # each model's own recommended settings (model cards)
        "text_to_image": {"num_inference_steps": 2, "guidance_scale": 0.0},  # sd-turbo: 1–4 steps, no guidance
        "text_to_audio": {"num_inference_steps": 50, "audio_length_in_s": 5.0, "negative_prompt": "Low quality."},
        "text_to_video": {"num_inference_steps": 25, "num_frames": 16},
    },
)

HUBSHAPE = GPU.with_(
    name="hubshape",
    checkpoints=Checkpoints(
        image_encoder="zoo:hub-clip",  # openai/clip-vit-base-patch32's shape
        audio_encoder="zoo:hub-clap",  # laion/clap-htsat-unfused
        llm="zoo:hub-qwen",  # Qwen/Qwen2.5-0.5B-Instruct
        text_to_image="zoo:hub-sd-turbo",  # stabilityai/sd-turbo
        text_to_audio="zoo:hub-audioldm2",  # cvssp/audioldm2
        text_to_video="zoo:hub-text2video",  # ali-vilab/text-to-video-ms-1.7b
    ),
    device="cpu",
    dtype="float32",
    train=replace(GPU.train, steps=6, batch_size=4, warmup_steps=2, eval_every=3),  # grad_accum 2, lr as on gpu
    dataset_records=120,
    generator_steps=2,
    generator_kwargs={  # the gpu profile's settings, shrunk for a CPU: fewer steps, tiny images, short clips
        "text_to_image": {"num_inference_steps": 1, "guidance_scale": 0.0, "height": 64, "width": 64},
        "text_to_audio": {"num_inference_steps": 2, "audio_length_in_s": 1.0, "negative_prompt": "Low quality."},
        "text_to_video": {"num_inference_steps": 2, "num_frames": 4, "height": 64, "width": 64},
    },
)

#: The tiny profile with every pair: edits, two media in, two outputs out (``edits.py``), as many training records
#: per pair as ``tiny`` has (25 pairs instead of 13), the same zoo LLM, and answers long enough for two segments.
DEMOS = TINY.with_(
    name="demos",
    pairs="all",
    dataset_records=23_100,
    # as many passes over its 18,480 training records as tiny makes over its 9,600, requests' ids left out now and
    # then, and every held-out record scored, as tiny scores all of its own (docs/NOTES.md, "Issue 18")
    train=replace(TINY.train, steps=2900, eval_every=725, max_new_tokens=40, token_dropout=0.05, eval_items=1155),
)

PROFILES = {"tiny": TINY, "gpu": GPU, "hubshape": HUBSHAPE, "demos": DEMOS}


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def get_profile(name: str | Profile = "auto") -> Profile:
    """``"tiny"``, ``"gpu"``, ``"hubshape"``, ``"demos"`` or ``"auto"`` (gpu where CUDA is available, else tiny)."""
    if isinstance(name, Profile):
        return name
    if name == "auto":
        return GPU if cuda_available() else TINY
    if name not in PROFILES:
        raise ProfileError(f"unknown profile {name!r}; expected 'auto' or one of {sorted(PROFILES)}")
    return PROFILES[name]
