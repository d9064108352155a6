"""The dispatcher: a meta-response in, text and media files out.

The LLM only *names* what to make (``Modality: [IMAGE] Prompt: a red circle``); this module makes it, with the
generators of ``generators.py``. Two parts, kept apart as in the paper's repository:

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
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from . import media, meta, zoo
from .errors import GeneratorError, MediaError, ModaVerseError
from .generators import DEFAULT_FPS, DEFAULT_SAMPLE_RATE, GENERATED, DiffusersGenerator, Generator, WorldRenderer
from .meta import MetaResponse, Segment
from .profiles import get_profile

EXTENSIONS = {"image": ".png", "audio": ".wav", "video": ".mp4"}  # the file each generated modality is saved as


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
    """The diffusers generator for ``modality``; resolving a "zoo:" checkpoint builds it (once, cached)."""
    role = f"text_to_{modality}"
    extra = {"num_frames": profile.video_frames} if modality == "video" else {}
    extra.update(profile.generator_kwargs.get(role, {}))  # e.g. sd-turbo: 1 step, no guidance
    steps = extra.pop("num_inference_steps", profile.generator_steps)
    return DiffusersGenerator(modality, zoo.checkpoint(profile, role), steps, profile.device, profile.dtype,
                              call_kwargs=extra or None)


def registry_for(profile="auto") -> Registry:
    """The registry a profile asks for: "world" → ``WorldRenderer``, anything else → ``DiffusersGenerator``.

    Nothing is built or loaded here: a "zoo:" checkpoint is built, and any pipeline loaded, on its first use.
    """
    profile = get_profile(profile)
    registry = Registry()
    for modality in GENERATED:
        ref = profile.reference(f"text_to_{modality}")
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
