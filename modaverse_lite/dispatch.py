"""The dispatcher: a meta-response in, text and media files out.

The LLM only *names* what to make (``Modality: [IMAGE] Prompt: a red circle``); this module makes it. Three parts,
kept apart as in the paper's repository:

* **generators** — ``generate(prompt, seed) -> array``: image ``(H, W, 3)`` uint8, audio ``(n,)`` float32 (with a
  ``sample_rate`` attribute), video ``(T, H, W, 3)`` uint8. A generator loads its model lazily, once, on its first
  call. ``WorldRenderer`` draws exactly what a world prompt says (the tiny profile's default);
  ``DiffusersGenerator`` runs any diffusers text-to-X pipeline, a hub id or a local folder.
* **the registry** — modality name → generator factory. It is the only way from words to code: a meta-response can
  only pick one of the registered keys, never a path, a class or a function. ``registry_for(profile)`` fills it from
  the profile's ``text_to_image`` / ``text_to_audio`` / ``text_to_video`` checkpoints.
* **the dispatcher** — parses the response (``meta.parse``), passes TEXT segments through, generates the others and
  writes them as PNG / WAV / MP4 under ``out_dir``. Each file gets a fresh name
  (``image-20240101-120000-0003-1a2b3c4d.png``) created exclusively, so nothing is ever overwritten.

Failures: a segment whose generator fails (unknown modality, a prompt it cannot draw, a missing checkpoint, a file
that cannot be written) becomes an ``Output`` with ``path=None`` and ``error`` set to the message; the other segments
are still generated. Only ``ModaVerseError`` is caught this way — a bug in a generator still raises.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from . import media, meta, world
from .errors import CheckpointError, GeneratorError, MediaError, ModaVerseError
from .meta import MetaResponse, Segment

GENERATED = meta.MEDIA  # ("image", "audio", "video"): the modalities a generator makes; text passes through
EXTENSIONS = {"image": ".png", "audio": ".wav", "video": ".mp4"}
DEFAULT_SAMPLE_RATE = 16_000  # when a pipeline does not say its rate
DEFAULT_FPS = 8


# ---- generators -------------------------------------------------------------------------------------------------
class Generator:
    """A text-to-X generator. Subclasses write ``_load`` (build the model) and ``_generate`` (run it)."""

    sample_rate: int | None = None  # audio generators: Hz of the arrays they return
    fps: int = DEFAULT_FPS  # video generators: frames per second to save at

    def __init__(self, modality: str, name: str):
        if modality not in GENERATED:
            raise GeneratorError(f"a generator makes one of {GENERATED}, not {modality!r} (text needs no generator)")
        self.modality, self.name = modality, name
        self.loads = 0  # how many times the model was loaded: 0 before the first call, then 1 for good
        self._loaded = False

    def load(self) -> Generator:
        """Load the model if it is not loaded yet. Called by ``generate``; call it yourself to warm up."""
        if not self._loaded:
            self._load()
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


class WorldRenderer(Generator):
    """Draws exactly what a world prompt says: "a red circle", "a high sine tone", "a blue square moving up"."""

    def __init__(self, modality: str):
        super().__init__(modality, f"world:{modality}")
        if modality == "audio":
            self.sample_rate = world.SAMPLE_RATE

    def _generate(self, prompt: str, seed: int) -> np.ndarray:
        parsed = world.parse_caption(prompt) if isinstance(prompt, str) else None
        example = _example(self.modality)
        if parsed is None:
            raise GeneratorError(f"the world {self.modality} renderer cannot draw {prompt!r}: it draws only "
                                 f"prompts of the synthetic world, such as {example!r}")
        modality, attributes = parsed
        if modality != self.modality:
            raise GeneratorError(f"{prompt!r} describes world {modality}, not {self.modality}: the world "
                                 f"{self.modality} renderer draws prompts such as {example!r}")
        return world.render(modality, attributes, seed=seed).data


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
        from diffusers import DiffusionPipeline

        torch_dtype = getattr(torch, str(self.dtype), None)
        if not isinstance(torch_dtype, torch.dtype):
            raise GeneratorError(f"unknown dtype {self.dtype!r}; expected 'float32', 'float16' or 'bfloat16'")
        try:
            with warnings.catch_warnings():  # diffusers >= 0.36 renames torch_dtype to dtype; older ones lack dtype
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
                pipe = DiffusionPipeline.from_pretrained(self.checkpoint, torch_dtype=torch_dtype)
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
            with torch.inference_mode():
                out = self.pipe(prompt, num_inference_steps=self.steps, generator=generator, output_type="np",
                                **self.call_kwargs)
            return pipeline_output(self.modality, out)
        except Exception as e:  # a pipeline can fail in many ways; the caller gets one error naming it
            raise GeneratorError(f"{self.name!r} failed on {prompt!r}: {type(e).__name__}: {e}") from e


# ---- the registry -------------------------------------------------------------------------------------------------
class Registry:
    """Modality name → generator factory. Each generator is made on first use and then reused."""

    def __init__(self):
        self._factories: dict[str, Callable[[], Generator]] = {}
        self._generators: dict[str, Generator] = {}

    def register(self, modality: str, factory: Callable[[], Generator] | Generator) -> None:
        """Register a factory (a callable with no arguments) or a ready generator for ``modality``."""
        if modality not in GENERATED:
            raise GeneratorError(f"can only register one of {GENERATED}, not {modality!r}")
        if hasattr(factory, "generate"):
            factory = partial(_same, factory)
        self._factories[modality] = factory
        self._generators.pop(modality, None)

    def get(self, modality: str) -> Generator:
        """The generator for ``modality``; an unregistered name raises GeneratorError (it is only ever a key)."""
        if not isinstance(modality, str) or modality not in self._factories:
            raise GeneratorError(f"no generator registered for {modality!r}; registered: {self.modalities}")
        if modality not in self._generators:
            gen = self._factories[modality]()
            if getattr(gen, "modality", None) != modality:
                raise GeneratorError(f"the factory registered for {modality!r} made a generator for "
                                     f"{getattr(gen, 'modality', None)!r}")
            self._generators[modality] = gen
        return self._generators[modality]

    @property
    def modalities(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, modality) -> bool:
        return modality in self._factories

    def __repr__(self) -> str:
        return f"Registry({self.modalities})"


def _same(generator: Generator) -> Generator:
    return generator


def _diffusers_for(profile, modality: str) -> DiffusersGenerator:
    role = f"text_to_{modality}"
    extra = {"num_frames": profile.video_frames} if modality == "video" else {}
    extra.update(profile.generator_kwargs.get(role, {}))  # e.g. sd-turbo: 1 step, no guidance
    steps = extra.pop("num_inference_steps", profile.generator_steps)
    return DiffusersGenerator(modality, profile.checkpoint(role), steps, profile.device, profile.dtype,
                              call_kwargs=extra or None)


def registry_for(profile="auto") -> Registry:
    """The registry a profile asks for: "world" → ``WorldRenderer``, anything else → ``DiffusersGenerator``.

    Nothing is built or loaded here: a "zoo:" checkpoint is built, and any pipeline loaded, on its first use.
    """
    from .profiles import get_profile

    profile = get_profile(profile)
    registry = Registry()
    for modality in GENERATED:
        ref = getattr(profile.checkpoints, f"text_to_{modality}")
        factory = partial(WorldRenderer, modality) if ref == "world" else partial(_diffusers_for, profile, modality)
        registry.register(modality, factory)
    return registry


# ---- the dispatcher -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Output:
    """One segment's result: ``text`` for TEXT, a file ``path`` for media, or ``error`` when generation failed."""

    modality: str
    path: Path | None
    prompt: str
    generator: str  # the generator's name, "text" for a passthrough, "" when none was found
    seconds: float
    text: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Dispatcher:
    """Turns a meta-response into outputs: text passes through, media is generated and written under ``out_dir``."""

    def __init__(self, registry: Registry, out_dir: str | os.PathLike):
        self.registry, self.out_dir = registry, Path(out_dir)
        self.last: MetaResponse | None = None  # the last parsed response, with its notes
        self._counter = itertools.count()

    def __call__(self, response: str | MetaResponse, seed: int = 0) -> list[Output]:
        self.last = response if isinstance(response, MetaResponse) else meta.parse(response)
        return [self._one(segment, seed) for segment in self.last.segments]

    def _one(self, segment: Segment, seed: int) -> Output:
        start = time.perf_counter()
        if segment.modality == "text":
            return Output("text", None, segment.prompt, "text", time.perf_counter() - start, text=segment.prompt)
        name = ""
        try:
            gen = self.registry.get(segment.modality)
            name = gen.name
            data = gen.generate(segment.prompt, seed)
            path = self._save(segment.modality, data, gen)
        except ModaVerseError as e:
            return Output(segment.modality, None, segment.prompt, name, time.perf_counter() - start, error=str(e))
        return Output(segment.modality, path, segment.prompt, name, time.perf_counter() - start)

    def _reserve(self, modality: str, ext: str) -> Path:
        """A new, empty file under ``out_dir`` whose name no one else has or will have (O_EXCL)."""
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MediaError(f"cannot create the output folder {self.out_dir}: {e}") from e
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for _ in range(100):
            path = self.out_dir / f"{modality}-{stamp}-{next(self._counter):04d}-{uuid.uuid4().hex[:8]}{ext}"
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                return path
            except FileExistsError:
                continue
            except OSError as e:
                raise MediaError(f"cannot create a file in {self.out_dir}: {e}") from e
        raise MediaError(f"could not find a free file name in {self.out_dir} after 100 tries")

    def _save(self, modality: str, data: np.ndarray, gen: Generator) -> Path:
        exts = [EXTENSIONS[modality]] + ([".gif"] if modality == "video" else [])  # GIF if ffmpeg fails
        for i, ext in enumerate(exts):
            path = self._reserve(modality, ext)
            try:  # media.save_* writes a temporary file and renames it over our empty placeholder
                if modality == "image":
                    return media.save_image(data, path)
                if modality == "audio":
                    return media.save_audio(data, path, gen.sample_rate or DEFAULT_SAMPLE_RATE)
                return media.save_video(data, path, fps=getattr(gen, "fps", DEFAULT_FPS))
            except MediaError:
                path.unlink(missing_ok=True)
                if i == len(exts) - 1:
                    raise
        raise AssertionError("unreachable")


# ---- overhead benchmark -------------------------------------------------------------------------------------------
class _Stub(Generator):
    """A generator whose work is nothing: what is left to time is parsing and routing."""

    def __init__(self, modality: str):
        super().__init__(modality, f"stub:{modality}")
        self.sample_rate = DEFAULT_SAMPLE_RATE
        self._data = {"image": np.zeros((8, 8, 3), np.uint8), "audio": np.zeros(16, np.float32),
                      "video": np.zeros((2, 8, 8, 3), np.uint8)}[modality]

    def _generate(self, prompt: str, seed: int) -> np.ndarray:
        return self._data


def bench_dispatch(n: int = 1000) -> dict:
    """Dispatch overhead per request (parse + registry lookup + call of an already-loaded, do-nothing generator).

    The requests mix one-segment, multi-segment, malformed and free-text responses. No file is written: saving and
    generating are the generators' and media's costs, not the dispatcher's. Each figure is the best of 5 runs of
    ``n`` requests, in milliseconds per request; ``ok`` says whether the whole is under the 1 ms budget.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    registry = Registry()
    for modality in GENERATED:
        registry.register(modality, _Stub(modality))
        registry.get(modality).load()
    requests = [
        meta.format_meta("image", "a red circle"),
        meta.format_meta("audio", "a high sine tone"),
        meta.format_segments([("text", "Here is the clip you asked for."), ("video", "a blue square moving up")]),
        "modality: [image] prompt: Prompt: a green diamond",  # tolerated with notes
        "Modality: [IMAG Prompt: a red circle",  # falls back to text
        "A plain text answer without any marker.",
    ]

    parsed = [meta.parse(text).segments for text in requests]

    def parse_only(i: int) -> None:
        meta.parse(requests[i % len(requests)])

    def route_only(i: int) -> None:  # registry lookup and call, on segments parsed beforehand
        for segment in parsed[i % len(parsed)]:
            if segment.modality != "text":
                registry.get(segment.modality).generate(segment.prompt, 0)

    def both(i: int) -> None:
        for segment in meta.parse(requests[i % len(requests)]).segments:
            if segment.modality != "text":
                registry.get(segment.modality).generate(segment.prompt, 0)

    def best_ms(step: Callable[[int], None], repeats: int = 5) -> float:
        """Milliseconds per request, best of ``repeats`` runs of ``n`` (the least disturbed by other processes)."""
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            for i in range(n):
                step(i)
            runs.append(1e3 * (time.perf_counter() - start) / n)
        return min(runs)

    for i in range(len(requests)):  # warm up
        both(i)
    per_ms = best_ms(both)
    return {"n": n, "per_request_ms": round(per_ms, 4), "parse_ms": round(best_ms(parse_only), 4),
            "route_ms": round(best_ms(route_only), 4), "budget_ms": 1.0, "ok": per_ms < 1.0}
