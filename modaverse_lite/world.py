"""The synthetic world: seeded images, tones and clips, each with the attributes that made it and a caption.

Everything a tiny model must learn lives here, small enough to learn on a laptop CPU:

* image — a coloured shape on a dark background: "a red circle"
* audio — a one-second tone of a pitch and a timbre: "a high square tone"
* video — a coloured shape moving in one of four directions: "a blue triangle moving left"

Some attribute combinations never appear in training (``UNSEEN``); they test whether a model composes
attributes it has only seen apart. ``caption`` and ``parse_caption`` are inverses, and ``render`` draws exactly
what a caption says, which is what the tiny profile's world renderers use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

MODALITIES = ("image", "audio", "video")

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 70),
    "blue": (50, 90, 235),
    "yellow": (235, 215, 40),
    "purple": (160, 60, 210),
    "orange": (245, 140, 30),
}
SHAPES = ("circle", "square", "triangle", "diamond")
DIRECTIONS = ("left", "right", "up", "down")
PITCHES: dict[str, float] = {"low": 220.0, "mid": 440.0, "high": 880.0}
TIMBRES = ("sine", "square", "sawtooth", "triangle")

#: The attributes each modality is made of, in caption order.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "image": ("colour", "shape"),
    "audio": ("pitch", "timbre"),
    "video": ("colour", "shape", "direction"),
}
VALUES: dict[str, tuple[str, ...]] = {
    "colour": tuple(COLOURS),
    "shape": SHAPES,
    "direction": DIRECTIONS,
    "pitch": tuple(PITCHES),
    "timbre": TIMBRES,
}

#: Attribute combinations held out of training entirely. Every single value still appears in training.
UNSEEN: dict[str, frozenset[tuple[str, ...]]] = {
    "image": frozenset({("red", "triangle"), ("green", "diamond"), ("blue", "circle"), ("yellow", "square")}),
    "audio": frozenset({("low", "sawtooth"), ("mid", "triangle"), ("high", "sine")}),
    "video": frozenset({("orange", "circle", "up"), ("purple", "square", "left"), ("blue", "diamond", "right"),
                        ("green", "triangle", "down"), ("red", "square", "down"), ("yellow", "circle", "left")}),
}

IMAGE_SIZE = 64  # pixels, square
SAMPLE_RATE = 16_000  # Hz, the world's own rate; encoders resample to theirs
AUDIO_SECONDS = 1.0
VIDEO_FRAMES = 8
BACKGROUND = (24, 24, 32)

_GRID = (("top left", "top", "top right"), ("left", "centre", "right"), ("bottom left", "bottom", "bottom right"))


@dataclass(frozen=True)
class Sample:
    """One piece of world media with its ground truth."""

    modality: str
    attributes: dict[str, str]
    caption: str
    data: np.ndarray  # image HxWx3 uint8 | audio (n,) float32 at SAMPLE_RATE | video TxHxWx3 uint8
    frame_captions: tuple[str, ...] = field(default=())  # video only: "a red circle at the top left", per frame


def caption(modality: str, attributes: dict[str, str]) -> str:
    """The canonical caption of a piece of media: the words a prompt must contain to draw it."""
    a = attributes
    if modality == "image":
        text = f"{a['colour']} {a['shape']}"
    elif modality == "audio":
        text = f"{a['pitch']} {a['timbre']} tone"
    elif modality == "video":
        text = f"{a['colour']} {a['shape']} moving {a['direction']}"
    else:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    return ("an " if text[0] in "aeiou" else "a ") + text


_PATTERNS = {
    "video": re.compile(rf"^an? ({'|'.join(COLOURS)}) ({'|'.join(SHAPES)}) moving ({'|'.join(DIRECTIONS)})$"),
    "audio": re.compile(rf"^an? ({'|'.join(PITCHES)}) ({'|'.join(TIMBRES)}) tone$"),
    "image": re.compile(rf"^an? ({'|'.join(COLOURS)}) ({'|'.join(SHAPES)})$"),
}


def parse_caption(text: str) -> tuple[str, dict[str, str]] | None:
    """Inverse of ``caption``: ``"a red circle"`` → ``("image", {"colour": "red", "shape": "circle"})``.

    Returns None for text that does not describe a world object.
    """
    clean = " ".join(text.lower().strip().rstrip(".").split())
    for modality, pattern in _PATTERNS.items():
        m = pattern.match(clean)
        if m:
            return modality, dict(zip(ATTRIBUTES[modality], m.groups()))
    return None


def attributes_of(text: str, modality: str) -> dict[str, str] | None:
    """The world attributes of ``text`` if it is a caption of world ``modality``, else None:
    ``attributes_of("a red circle", "image")`` → ``{"colour": "red", "shape": "circle"}``; ``(..., "audio")`` → None."""
    parsed = parse_caption(text) if isinstance(text, str) else None
    return parsed[1] if parsed is not None and parsed[0] == modality else None


def combinations(modality: str, split: str = "all") -> list[tuple[str, ...]]:
    """Every attribute combination of a modality: ``split`` is "seen" (trainable), "unseen" or "all"."""
    if split not in ("seen", "unseen", "all"):
        raise ValueError(f"unknown split {split!r}; expected 'seen', 'unseen' or 'all'")
    combos = [()]
    for name in ATTRIBUTES[modality]:
        combos = [c + (v,) for c in combos for v in VALUES[name]]
    if split == "seen":
        return [c for c in combos if c not in UNSEEN[modality]]
    if split == "unseen":
        return [c for c in combos if c in UNSEEN[modality]]
    return combos


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        s = r * 0.85
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r * 0.8, cy), (cx, cy + r), (cx - r * 0.8, cy)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def _canvas(rng: np.random.Generator) -> Image.Image:
    jitter = rng.integers(-8, 9, size=3)
    return Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), tuple(int(c + j) for c, j in zip(BACKGROUND, jitter)))


def _colour(name: str, rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-15, 16), 0, 255)) for c in COLOURS[name])


def _where(cx: float, cy: float) -> str:
    third = IMAGE_SIZE / 3
    return _GRID[min(int(cy // third), 2)][min(int(cx // third), 2)]


def render_image(colour: str, shape: str, rng: np.random.Generator) -> np.ndarray:
    """A shape of random size and position: HxWx3 uint8."""
    img = _canvas(rng)
    r = rng.uniform(9, 16)
    cx, cy = rng.uniform(r + 2, IMAGE_SIZE - r - 2, size=2)
    _draw_shape(ImageDraw.Draw(img), shape, cx, cy, r, _colour(colour, rng))
    return np.asarray(img)


def render_audio(pitch: str, timbre: str, rng: np.random.Generator) -> np.ndarray:
    """A one-second tone with small jitter in frequency, loudness and noise: (n,) float32 in [-1, 1]."""
    f = PITCHES[pitch] * rng.uniform(0.96, 1.04)
    t = np.arange(int(SAMPLE_RATE * AUDIO_SECONDS)) / SAMPLE_RATE
    phase = f * t + rng.uniform()
    if timbre == "sine":
        wave = np.sin(2 * np.pi * phase)
    elif timbre == "square":
        wave = np.sign(np.sin(2 * np.pi * phase))
    elif timbre == "sawtooth":
        wave = 2 * (phase % 1.0) - 1
    elif timbre == "triangle":
        wave = 2 * np.abs(2 * (phase % 1.0) - 1) - 1
    else:
        raise ValueError(f"unknown timbre {timbre!r}; expected one of {TIMBRES}")
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    wave = rng.uniform(0.3, 0.6) * wave * fade + rng.normal(0, 0.01, size=t.shape)
    return np.clip(wave, -1, 1).astype(np.float32)


_STEP = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


def render_video(colour: str, shape: str, direction: str, rng: np.random.Generator,
                 frames: int = VIDEO_FRAMES) -> tuple[np.ndarray, tuple[str, ...]]:
    """A shape crossing the frame in one direction: (TxHxWx3 uint8, per-frame position captions)."""
    dx, dy = _STEP[direction]
    r = rng.uniform(7, 10)
    travel = rng.uniform(30, 40)
    lo, hi = r + 2, IMAGE_SIZE - r - 2
    # start so that the whole path stays inside the frame
    sx = rng.uniform(lo, hi) if dx == 0 else (rng.uniform(lo, hi - travel) if dx > 0 else rng.uniform(lo + travel, hi))
    sy = rng.uniform(lo, hi) if dy == 0 else (rng.uniform(lo, hi - travel) if dy > 0 else rng.uniform(lo + travel, hi))
    fill, canvas = _colour(colour, rng), _canvas(rng)
    out, where = [], []
    for i in range(frames):
        k = travel * i / (frames - 1)
        cx, cy = sx + dx * k, sy + dy * k
        img = canvas.copy()
        _draw_shape(ImageDraw.Draw(img), shape, cx, cy, r, fill)
        out.append(np.asarray(img))
        where.append(f"{caption('image', {'colour': colour, 'shape': shape})} at the {_where(cx, cy)}")
    return np.stack(out), tuple(where)


def render(modality: str, attributes: dict[str, str], seed: int = 0) -> Sample:
    """Draw exactly what the attributes say (a random size, position, jitter chosen by ``seed``)."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    for name in ATTRIBUTES[modality]:
        if attributes.get(name) not in VALUES[name]:
            raise ValueError(f"{modality} attribute {name}={attributes.get(name)!r} is not one of {VALUES[name]}")
    rng = np.random.default_rng(seed)
    attrs = {k: attributes[k] for k in ATTRIBUTES[modality]}
    frame_captions: tuple[str, ...] = ()
    if modality == "image":
        data = render_image(attrs["colour"], attrs["shape"], rng)
    elif modality == "audio":
        data = render_audio(attrs["pitch"], attrs["timbre"], rng)
    else:
        data, frame_captions = render_video(attrs["colour"], attrs["shape"], attrs["direction"], rng)
    return Sample(modality, attrs, caption(modality, attrs), data, frame_captions)


def generate(modality: str, n: int, seed: int = 0, split: str = "seen") -> list[Sample]:
    """``n`` samples drawn evenly over the combinations of ``split`` ("seen", "unseen" or "all"), seeded."""
    combos = combinations(modality, split)
    rng = np.random.default_rng([seed, MODALITIES.index(modality), ("seen", "unseen", "all").index(split)])
    order = np.concatenate([rng.permutation(len(combos)) for _ in range(n // len(combos) + 1)])[:n]
    seeds = rng.integers(0, 2**31 - 1, size=n)
    return [render(modality, dict(zip(ATTRIBUTES[modality], combos[i])), int(s)) for i, s in zip(order, seeds)]


# ---- cross-modal rules: how the world turns one kind of media into another (the X→Y instructions) ----------
#: A shape's sound and a sound's shape: circle ↔ sine, square ↔ square, triangle ↔ triangle, diamond ↔ sawtooth.
TIMBRE_OF_SHAPE = {"circle": "sine", "square": "square", "triangle": "triangle", "diamond": "sawtooth"}
SHAPE_OF_TIMBRE = {t: s for s, t in TIMBRE_OF_SHAPE.items()}
#: Red and orange sound high, yellow and green mid, blue and purple low; a pitch is drawn in one colour.
PITCH_OF_COLOUR = {"red": "high", "orange": "high", "yellow": "mid", "green": "mid", "blue": "low", "purple": "low"}
COLOUR_OF_PITCH = {"low": "blue", "mid": "green", "high": "red"}


def translate(source: str, attributes: dict[str, str], target: str, direction: str | None = None) -> dict[str, str]:
    """The attributes of ``target`` media that the world's rules derive from ``source`` media.

    image/video → audio: colour gives the pitch, shape the timbre; audio → image/video: the reverse;
    video → image: the same object standing still; image/audio → video needs a ``direction``.
    """
    a = dict(attributes)
    if source == "audio":
        a = {"colour": COLOUR_OF_PITCH[a["pitch"]], "shape": SHAPE_OF_TIMBRE[a["timbre"]]}
    if target == "audio":
        if "pitch" in a:
            return {"pitch": a["pitch"], "timbre": a["timbre"]}
        return {"pitch": PITCH_OF_COLOUR[a["colour"]], "timbre": TIMBRE_OF_SHAPE[a["shape"]]}
    if target == "image":
        return {"colour": a["colour"], "shape": a["shape"]}
    if target == "video":
        d = direction or a.get("direction")
        if d not in DIRECTIONS:
            raise ValueError(f"a video needs a direction, one of {DIRECTIONS}; got {d!r}")
        return {"colour": a["colour"], "shape": a["shape"], "direction": d}
    raise ValueError(f"unknown target modality {target!r}; expected one of {MODALITIES}")
