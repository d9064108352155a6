"""Generators: text in, media out — the right-hand end of ModaVerse.

A generator is ``generate(prompt, seed) -> array``: image ``(H, W, 3)`` uint8, audio ``(n,)`` float32 (with a
``sample_rate`` attribute), video ``(T, H, W, 3)`` uint8. The same prompt and seed give the same array. A generator
loads its model lazily, once, on its first call; a load that failed is remembered and its error raised again on
every later call, so a broken checkpoint costs one attempt, not one per request.

* ``WorldRenderer`` draws exactly what a world prompt says ("a red circle"): the tiny profile's default, and the
  ground truth the others are judged against.
* ``DiffusersGenerator`` runs any diffusers text-to-X pipeline, a hub id or a local folder in hub layout.

Generators know nothing of meta-responses or files: ``dispatch.py`` picks one by name and writes what it returns.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import meta, world
from .errors import CheckpointError, GeneratorError

GENERATED = meta.MEDIA  # ("image", "audio", "video"): the modalities a generator makes; text passes through
DEFAULT_SAMPLE_RATE = 16_000  # when a pipeline does not say its rate
DEFAULT_FPS = 8


class Generator:
    """A text-to-X generator. Subclasses write ``_load`` (build the model) and ``_generate`` (run it)."""

    sample_rate: int | None = None  # audio generators: Hz of the arrays they return
    fps: int = DEFAULT_FPS  # video generators: frames per second to save at

    def __init__(self, modality: str, name: str):
        if modality not in GENERATED:
            raise GeneratorError(f"a generator makes one of {GENERATED}, not {modality!r} (text needs no generator)")
        self.modality, self.name = modality, name
        self.loads = 0  # how many times the model was loaded: 0 before the first call, then 1 for good
        self.load_error: Exception | None = None  # why the load failed, if it did: raised again, never retried
        self._loaded = False

    def load(self) -> Generator:
        """Load the model if it is not loaded yet. Called by ``generate``; call it yourself to warm up.

        A failed load is tried once: later calls raise the same kind of error with the same message."""
        if self.load_error is not None:
            raise _again(self.load_error)
        if not self._loaded:
            try:
                self._load()
            except Exception as e:
                self.load_error = e
                raise
            self._loaded = True
            self.loads += 1
        return self

    def generate(self, prompt: str, seed: int = 0) -> np.ndarray:
        """The media ``prompt`` asks for, as an array; the same prompt and seed give the same array."""
        self.load()
        return _checked(self, self._generate(prompt, int(seed)))

    def _load(self) -> None:
        pass

    def _generate(self, prompt: str, seed: int) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.modality!r}, name={self.name!r}, loaded={self._loaded})"


def _again(error: Exception) -> Exception:
    """A fresh copy of a remembered error (same type, same message), caused by the original: the first failure's
    traceback is kept once, instead of piling up on one exception object call after call."""
    try:
        again = copy.copy(error)
    except Exception:  # an exception type that cannot be rebuilt from its args
        return error.with_traceback(None)
    again.__cause__ = error
    return again


def _checked(gen: Generator, data) -> np.ndarray:
    """Refuse an array of the wrong shape or type before it reaches a file: the generator is named."""
    data = np.asarray(data)
    want = {"image": "(H, W, 3) uint8", "audio": "(n,) float32", "video": "(T, H, W, 3) uint8"}[gen.modality]
    good = {"image": data.ndim == 3 and data.shape[-1] == 3 and data.dtype == np.uint8,
            "audio": data.ndim == 1 and data.size > 0 and data.dtype == np.float32,
            "video": data.ndim == 4 and data.shape[-1] == 3 and data.dtype == np.uint8}[gen.modality]
    if not good:
        raise GeneratorError(f"generator {gen.name!r} returned {data.dtype} {data.shape}; a {gen.modality} must be "
                             f"{want}")
    if gen.modality == "audio" and not np.isfinite(data).all():
        raise GeneratorError(f"generator {gen.name!r} returned audio with NaN or infinite samples")
    return data


def _example(modality: str) -> str:
    """A prompt the world renderer of ``modality`` can draw, for error messages: "a red circle"."""
    return world.caption(modality, {name: world.VALUES[name][0] for name in world.ATTRIBUTES[modality]})


# ---- the world renderers ------------------------------------------------------------------------------------------
class WorldRenderer(Generator):
    """Draws exactly what a world prompt says: "a red circle", "a high sine tone", "a blue square moving up"."""

    def __init__(self, modality: str):
        super().__init__(modality, f"world:{modality}")
        if modality == "audio":
            self.sample_rate = world.SAMPLE_RATE

    def _generate(self, prompt: str, seed: int) -> np.ndarray:
        attributes = world.attributes_of(prompt, self.modality)
        if attributes is not None:
            return world.render(self.modality, attributes, seed=seed).data
        parsed = world.parse_caption(prompt) if isinstance(prompt, str) else None  # why not: which message
        example = _example(self.modality)
        if parsed is None:
            raise GeneratorError(f"the world {self.modality} renderer cannot draw {prompt!r}: it draws only "
                                 f"prompts of the synthetic world, such as {example!r}")
        raise GeneratorError(f"{prompt!r} describes world {parsed[0]}, not {self.modality}: the world "
                             f"{self.modality} renderer draws prompts such as {example!r}")


# ---- diffusers pipelines ------------------------------------------------------------------------------------------
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def check_checkpoint(ref: str) -> None:
    """Raise CheckpointError when ``ref`` is a missing or incomplete local pipeline folder (hub ids pass)."""
    path = Path(ref).expanduser()
    if not path.exists():
        if _HUB_ID.match(ref):
            return  # a hub id: from_pretrained resolves (or downloads) it
        raise CheckpointError(f"no diffusers pipeline at {ref!r}: the folder does not exist (and it is not a hub id "
                              f"like 'stabilityai/sd-turbo'); build or download it first")
    index = path / "model_index.json"
    if not path.is_dir() or not index.is_file():
        raise CheckpointError(f"{path} is not a diffusers pipeline folder: it has no model_index.json "
                              f"(an unfinished save or download?)")
    try:
        parts = json.loads(index.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{index} cannot be read ({e}); the checkpoint is corrupt: save it again") from e
    missing = [name for name, spec in parts.items() if not name.startswith("_") and isinstance(spec, list)
               and spec and spec[0] is not None and not (path / name).is_dir()]
    if missing:
        raise CheckpointError(f"{path} is incomplete: model_index.json lists {missing} but those folders are "
                              f"missing; save or download the pipeline again")


def _numpy(x) -> np.ndarray:
    """A tensor, a PIL image, or a list of them → numpy."""
    if hasattr(x, "detach"):  # torch.Tensor
        return x.detach().float().cpu().numpy()
    if isinstance(x, (list, tuple)):
        return np.stack([_numpy(item) for item in x])
    return np.asarray(x)


def _uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    a = np.nan_to_num(a.astype(np.float32), nan=0.0)
    return (np.clip(a, 0.0, 1.0) * 255).round().astype(np.uint8)  # diffusers' "np" output is in [0, 1]


def pipeline_output(modality: str, out) -> np.ndarray:
    """The first item of a diffusers pipeline's output, in this package's array convention."""
    if modality == "image":
        a = _numpy(out.images)
        return _uint8(a[0] if a.ndim == 4 else a)
    if modality == "audio":
        a = _numpy(out.audios).astype(np.float32)
        while a.ndim > 1:  # (batch, n) or (batch, channels, n): first item, channels averaged
            a = a[0] if a.ndim == 2 else a[0].mean(axis=0)
        return np.ascontiguousarray(a)
    frames = out.frames
    if isinstance(frames, (list, tuple)):  # a batch of videos, each a list of PIL images or an array
        frames = frames[0]
    a = _numpy(frames)
    if a.ndim == 5:  # (batch, T, H, W, C)
        a = a[0]
    if a.ndim == 4 and a.shape[-1] != 3 and a.shape[1] == 3:  # (T, C, H, W)
        a = a.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(_uint8(a))


def load_pipeline(checkpoint: str | os.PathLike, torch_dtype=None):
    """``DiffusionPipeline.from_pretrained(checkpoint)``, with two fixes for the hub checkpoints of the gpu profile:

    * half precision downloads a checkpoint's ``fp16`` variant where it has one (about half the bytes);
    * AudioLDM 2 declares its language model as ``GPT2Model``, which cannot ``generate`` under transformers 5:
      it is loaded as ``GPT2LMHeadModel`` (the same weights, plus the output layer tied to them).
    """
    import torch
    from diffusers import DiffusionPipeline

    checkpoint = str(checkpoint)
    kwargs = {"torch_dtype": torch_dtype or torch.float32}
    if DiffusionPipeline.load_config(checkpoint).get("_class_name") == "AudioLDM2Pipeline":
        from transformers import GPT2LMHeadModel

        kwargs["language_model"] = GPT2LMHeadModel.from_pretrained(checkpoint, subfolder="language_model",
                                                                   dtype=kwargs["torch_dtype"])
    if kwargs["torch_dtype"] == torch.float16 and not Path(checkpoint).expanduser().exists():
        try:
            return DiffusionPipeline.from_pretrained(checkpoint, variant="fp16", **kwargs)
        except (OSError, ValueError):  # no fp16 variant: the full-precision files, cast on load
            pass
    return DiffusionPipeline.from_pretrained(checkpoint, **kwargs)


@contextmanager
def _quiet_loading():
    """Load a pipeline without the libraries' chatter, and put their settings back afterwards.

    While a pipeline loads, diffusers and transformers draw a progress bar per component and per weight file, and
    transformers warns that a pipeline's ``CLIPImageProcessor`` falls back to its PIL version when torchvision is
    not installed (it does the same work; torchvision is optional here). None of it is the user's business.
    """
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    bars = [(lib, lib.is_progress_bar_enabled()) for lib in (diffusers_logging, transformers_logging)]
    fallback = logging.getLogger("transformers.utils.import_utils")  # the torchvision → PIL fallback's logger
    level = fallback.level
    fallback.setLevel(logging.ERROR)
    for lib, _ in bars:
        lib.disable_progress_bar()
    try:
        yield
    finally:
        fallback.setLevel(level)
        for lib, enabled in bars:
            if enabled:
                lib.enable_progress_bar()


class DiffusersGenerator(Generator):
    """Any diffusers text-to-X pipeline: ``DiffusionPipeline.from_pretrained(checkpoint)``, loaded on first use.

    ``checkpoint`` is a hub id or a local folder in hub layout; ``steps`` the diffusion steps; ``call_kwargs`` extra
    arguments for every call (``{"num_frames": 8}``, ``{"guidance_scale": 0.0}`` for sd-turbo).
    """

    def __init__(self, modality: str, checkpoint: str | os.PathLike, steps: int = 25, device: str = "cpu",
                 dtype: str = "float32", call_kwargs: dict | None = None):
        super().__init__(modality, f"diffusers:{checkpoint}")
        self.checkpoint, self.steps, self.device, self.dtype = str(checkpoint), int(steps), device, dtype
        self.call_kwargs = dict(call_kwargs or {})
        self.pipe = None

    def _load(self) -> None:
        check_checkpoint(self.checkpoint)  # before importing diffusers: a wrong path fails at once
        import torch

        torch_dtype = getattr(torch, str(self.dtype), None)
        if not isinstance(torch_dtype, torch.dtype):
            raise GeneratorError(f"unknown dtype {self.dtype!r}; expected 'float32', 'float16' or 'bfloat16'")
        try:
            with warnings.catch_warnings(), _quiet_loading():  # diffusers >= 0.36 renames torch_dtype to dtype;
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)  # older: no dtype
                pipe = load_pipeline(self.checkpoint, torch_dtype)
        except Exception as e:  # OSError, ValueError, safetensors errors, …: all mean "this checkpoint won't load"
            raise CheckpointError(f"cannot load a diffusers pipeline from {self.checkpoint!r}: {type(e).__name__}: "
                                  f"{e}") from e
        try:
            pipe = pipe.to(self.device)
        except Exception as e:
            raise GeneratorError(f"cannot move {self.name!r} to device {self.device!r}: {e}") from e
        pipe.set_progress_bar_config(disable=True)
        if self.modality == "audio":
            config = getattr(getattr(pipe, "vocoder", None), "config", None)
            self.sample_rate = int(getattr(config, "sampling_rate", None) or DEFAULT_SAMPLE_RATE)
        self.pipe = pipe

    def _generate(self, prompt: str, seed: int) -> np.ndarray:
        import torch

        generator = torch.Generator(self.device).manual_seed(seed)
        try:
            with torch.inference_mode(), warnings.catch_warnings():
                # AudioLDM 2's pipeline passes GPT-2 the `past_key_values` that transformers 5 deprecates: diffusers'
                # code, not the user's, so its FutureWarning is no news to them (it says nothing about the prompt)
                warnings.filterwarnings("ignore", message=".*past_key_values.*", category=FutureWarning)
                out = self.pipe(prompt, num_inference_steps=self.steps, generator=generator, output_type="np",
                                **self.call_kwargs)
            return pipeline_output(self.modality, out)
        except Exception as e:  # a pipeline can fail in many ways; the caller gets one error naming it
            raise GeneratorError(f"{self.name!r} failed on {prompt!r}: {type(e).__name__}: {e}") from e
