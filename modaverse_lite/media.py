"""Media in and out: load, validate and save images, audio and video, from a path or an array.

Everything past this module sees media in three plain shapes:

* image — ``(H, W, 3)`` uint8 RGB
* audio — ``(n,)`` float32 mono at the sample rate the caller asks for
* video — ``(T, H, W, 3)`` uint8 RGB with exactly the number of frames the caller asks for

Anything that cannot become one of those (a missing, empty, corrupt or truncated file, an unknown extension, an
array of the wrong shape, NaN audio, a decompression bomb) raises ``MediaError`` naming the file and the reason, so a
bad file in a dataset of thousands is found at once. This module knows nothing of models.

Size is checked from the header, before decoding: the ``MAX_*`` limits below bound the pixels of one image or frame,
the frames and the pixels decoded for one clip, and the seconds of audio, so a small file that would decode to
gigabytes (a decompression bomb) is refused in milliseconds.

Libraries: PIL for images and GIFs, soundfile (libsndfile) for audio with librosa as the fallback reader and the
resampler, and imageio-ffmpeg (the ffmpeg backend of imageio) for MP4 and WebM; ``video.py`` reads a GIF's frame
table and writes clips. Every save is atomic: a temporary file in the same folder, renamed over the target only once
it is complete.
"""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import soundfile as sf
from PIL import Image, ImageOps, ImageSequence

from .errors import MediaError
from .files import atomic_path
from .video import gif_table, write_clip

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3")
VIDEO_EXTS = (".mp4", ".gif", ".webm")
EXTS: dict[str, tuple[str, ...]] = {"image": IMAGE_EXTS, "audio": AUDIO_EXTS, "video": VIDEO_EXTS}

MAX_IMAGE_PIXELS = 40_000_000  # per image or video frame; larger is refused (decompression bombs)
MAX_AUDIO_SECONDS = 600  # longer audio is refused unless the caller cuts it with max_seconds
MAX_VIDEO_FRAMES_READ = 10_000  # longer videos are refused: cut them first
MAX_VIDEO_PIXELS = 1_000_000_000  # frames x width x height decoded per clip (16 s of 1080p at 30 fps); more: refused
_BUFFER_PIXELS = 200_000_000  # MP4 / WebM frames kept while sampling: at most this many pixels (600 MB) or 2 x frames

_MAX_AUDIO_CHANNELS = 8
_TRUNCATION_SLACK = 0.02  # compressed formats estimate their length; a shortfall beyond 2% means truncated


# ---- paths and atomic writes -------------------------------------------------------------------------------------
def modality_of(path: str | os.PathLike) -> str:
    """``"image"``, ``"audio"`` or ``"video"``, from the file extension alone (a bare ``".png"`` works too)."""
    name = Path(path).name.lower()
    ext = name if name.count(".") == 1 and name.startswith(".") else Path(name).suffix
    for modality, exts in EXTS.items():
        if ext in exts:
            return modality
    known = ", ".join(IMAGE_EXTS + AUDIO_EXTS + VIDEO_EXTS)
    raise MediaError(f"{path}: unknown media extension {ext or '(none)'!r}; expected one of {known}")


def _is_path(src) -> bool:
    return isinstance(src, (str, os.PathLike))


def _check_file(src: str | os.PathLike, modality: str) -> Path:
    """The path of a readable, non-empty file whose extension belongs to ``modality``."""
    path = Path(src).expanduser()
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: is a directory, not a {modality} file")
    ext = path.suffix.lower()
    if ext not in EXTS[modality]:
        hint = ""
        other = next((m for m, exts in EXTS.items() if ext in exts), None)
        if other:
            hint = f" (it looks like {other}; load it with load_{other} or load(..., {other!r}))"
        raise MediaError(f"{path}: unknown {modality} extension {ext or '(none)'!r}; "
                         f"expected one of {', '.join(EXTS[modality])}{hint}")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: is empty (0 bytes); re-create or re-download it")
    return path


def _target(path: str | os.PathLike, modality: str) -> Path:
    path = Path(path).expanduser()
    if path.suffix.lower() not in EXTS[modality]:
        raise MediaError(f"{path}: cannot save {modality} as {path.suffix or '(no extension)'!r}; "
                         f"use one of {', '.join(EXTS[modality])}")
    return path


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same extension, so encoders pick the format); rename on success."""
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except MediaError:
        raise
    except Exception as e:
        raise MediaError(f"{path}: could not write: {e}") from e


def _reason(e: Exception) -> str:
    """A one-line reason from a library exception (ffmpeg errors carry its whole log; keep the last line)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.startswith("===")]
    return (lines[-1] if lines else type(e).__name__)[:300]


# ---- images ------------------------------------------------------------------------------------------------------
def _to_uint8(a: np.ndarray, what: str) -> np.ndarray:
    """Pixel values of any sensible dtype → uint8: floats in [0, 1], uint16 in [0, 65535], other ints in [0, 255]."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise MediaError(f"{what}: contains NaN or infinite pixel values")
        lo, hi = float(a.min()), float(a.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise MediaError(f"{what}: float pixels must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]; "
                             f"for 0..255 values pass arr.astype(np.uint8)")
        return np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)
    if a.dtype == np.uint16:
        return np.round(a / 257.0).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise MediaError(f"{what}: integer pixels must lie in [0, 255], got [{lo}, {hi}]")
        return a.astype(np.uint8)
    raise MediaError(f"{what}: pixel dtype {a.dtype} is not an image type; use uint8 (0..255) or float (0..1)")


def _to_rgb(a: np.ndarray, what: str) -> np.ndarray:
    """``(..., C)`` pixels with C = 1 grey, 2 grey+alpha, 3 RGB or 4 RGBA → ``(..., 3)`` uint8 RGB.

    Alpha is composited over white, as image processors in transformers do.
    """
    a = _to_uint8(a, what)
    c = a.shape[-1]
    if c in (2, 4):
        alpha = a[..., -1:].astype(np.float32) / 255.0
        colour = a[..., :-1].astype(np.float32)
        a = np.round(colour * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a)


def _check_pixels(w: int, h: int, what: str) -> None:
    if w * h > MAX_IMAGE_PIXELS:
        raise MediaError(f"{what}: {w}x{h} = {w * h:,} pixels is over the limit of {MAX_IMAGE_PIXELS:,} "
                         f"(MAX_IMAGE_PIXELS, a guard against decompression bombs); downscale it first")


def _as_array(src, what: str) -> np.ndarray:
    try:
        a = np.asarray(src)
    except Exception as e:
        raise MediaError(f"{what}: cannot turn a {type(src).__name__} into an array: {e}") from e
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise MediaError(f"{what}: expected a numeric array, got dtype {a.dtype} ({type(src).__name__})")
    return a


def _image_array(src, what: str = "image array") -> np.ndarray:
    a = _as_array(src, what)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 2, 3, 4):
        hint = ""
        if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] > 4:
            hint = "; it looks channel-first: pass arr.transpose(1, 2, 0)"
        elif a.ndim == 4:
            hint = "; that looks like a video or a batch: pass one frame"
        raise MediaError(f"{what}: expected shape (H, W) or (H, W, 1|2|3|4), got {a.shape}{hint}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise MediaError(f"{what}: has no pixels (shape {a.shape})")
    _check_pixels(a.shape[1], a.shape[0], what)
    return _to_rgb(a, what)


def _pil_to_rgb(img: Image.Image, what: str) -> np.ndarray:
    """Any PIL mode → HxWx3 uint8 RGB: 16-bit and float greys are scaled, alpha (and P transparency) composited."""
    _check_pixels(img.width, img.height, what)
    if img.mode in ("RGB", "L"):
        return _to_rgb(np.asarray(img)[..., None] if img.mode == "L" else np.asarray(img), what)
    if img.mode.startswith("I;16"):
        return _to_rgb(np.asarray(img).astype(np.uint16)[..., None], what)
    if img.mode == "I":  # 32-bit ints: 8-bit data (convert("I")) or 16-bit data (TIFF, older Pillow's PNG)
        a = np.clip(np.asarray(img), 0, 65535)
        return _to_rgb((a.astype(np.uint16) if a.max() > 255 else a.astype(np.uint8))[..., None], what)
    if img.mode == "F":
        a = np.nan_to_num(np.asarray(img), nan=0.0)
        a = a / 255.0 if a.max() > 1 else a
        return _to_rgb(np.clip(a, 0, 1)[..., None], what)
    if "A" in img.mode or "a" in img.mode or "transparency" in img.info:
        return _to_rgb(np.asarray(img.convert("RGBA")), what)
    return _to_rgb(np.asarray(img.convert("RGB")), what)  # 1, P, CMYK, YCbCr, LAB, HSV …


def load_image(src: str | os.PathLike | np.ndarray | Image.Image) -> np.ndarray:
    """An image as ``(H, W, 3)`` uint8 RGB, from a path, a PIL image or an array.

    Arrays may be ``(H, W)`` grey or ``(H, W, 1|2|3|4)``; uint8, uint16, bool or float in [0, 1].
    Files have their EXIF orientation applied. Larger than ``MAX_IMAGE_PIXELS`` raises ``MediaError``.
    """
    if isinstance(src, Image.Image):
        try:
            return _pil_to_rgb(src, "PIL image")
        except MediaError:
            raise
        except Exception as e:
            raise MediaError(f"PIL image (mode {src.mode}): cannot convert to RGB: {_reason(e)}") from e
    if not _is_path(src):
        return _image_array(src)
    path = _check_file(src, "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _check_pixels(img.width, img.height, str(path))  # before decoding a single pixel
                img.load()
                return _pil_to_rgb(ImageOps.exif_transpose(img), str(path))
    except MediaError:
        raise
    except Exception as e:  # UnidentifiedImageError, truncated data, DecompressionBombError, …
        raise MediaError(f"{path}: not a readable image (corrupt or truncated?): {_reason(e)}") from e


_IMAGE_FORMATS = {".png": ("PNG", {}), ".jpg": ("JPEG", {"quality": 95}), ".jpeg": ("JPEG", {"quality": 95}),
                  ".webp": ("WEBP", {"quality": 95})}


def save_image(arr: np.ndarray | Image.Image, path: str | os.PathLike) -> Path:
    """Save an image as RGB; the format (PNG, JPEG, WebP) comes from the extension. Returns the path."""
    path = _target(path, "image")
    rgb = load_image(arr) if isinstance(arr, Image.Image) else _image_array(arr)
    fmt, options = _IMAGE_FORMATS[path.suffix.lower()]
    with _atomic(path) as tmp:
        Image.fromarray(rgb).save(tmp, format=fmt, **options)
    return path


# ---- audio -------------------------------------------------------------------------------------------------------
def _audio_array(src, what: str = "audio array", channels_last: bool = False) -> np.ndarray:
    """Samples → ``(n, channels)`` float32. Accepts ``(n,)``, ``(n, ch)`` or ``(ch, n)`` with ch ≤ 8."""
    a = _as_array(src, what)
    if a.ndim == 1:
        a = a[:, None]
    elif a.ndim == 2 and channels_last:
        pass  # decoded from a file: soundfile and our librosa path both give (n, channels)
    elif a.ndim == 2:
        if a.shape[1] <= _MAX_AUDIO_CHANNELS and a.shape[1] <= a.shape[0]:
            pass  # (n, channels), soundfile's layout
        elif a.shape[0] <= _MAX_AUDIO_CHANNELS:
            a = a.T  # (channels, n), librosa's and torchaudio's layout
        else:
            raise MediaError(f"{what}: shape {a.shape} has no channel axis of at most {_MAX_AUDIO_CHANNELS}; "
                             f"expected (n,), (n, channels) or (channels, n)")
    else:
        raise MediaError(f"{what}: expected shape (n,), (n, channels) or (channels, n), got {a.shape}")
    if a.size == 0:
        raise MediaError(f"{what}: has no samples (zero-length audio)")
    if np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
    elif a.dtype in (np.int16, np.int32, np.int8):
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max + 1)
    elif a.dtype == np.uint8:
        a = (a.astype(np.float32) - 128.0) / 128.0
    else:
        raise MediaError(f"{what}: sample dtype {a.dtype} is ambiguous; pass float32 in [-1, 1] "
                         f"(or int16 / int32 PCM)")
    bad = int((~np.isfinite(a)).sum())
    if bad:
        raise MediaError(f"{what}: {bad} of {a.size} samples are NaN or infinite")
    return a


def _check_rate(rate, name: str) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise MediaError(f"{name} must be a positive whole number of Hz, got {rate!r}")
    return int(rate)


def _riff_truncated(path: Path) -> bool:
    """A WAV whose RIFF header promises more bytes than the file holds was cut short (libsndfile reads it anyway)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] not in (b"RIFF", b"RIFX"):
        return False
    declared = int.from_bytes(head[4:8], "little" if head[:4] == b"RIFF" else "big")
    return declared not in (0, 0xFFFFFFFF) and declared + 8 > path.stat().st_size  # 0 / ~0: written by a stream


def _read_audio(path: Path, max_seconds: float | None) -> tuple[np.ndarray, int]:
    """``((n, channels) samples, rate)`` via soundfile, or librosa (audioread) for what libsndfile cannot read."""
    try:
        info = sf.info(str(path))
    except Exception as first:
        return _read_audio_librosa(path, max_seconds, first)
    rate = int(info.samplerate)
    if info.frames > MAX_AUDIO_SECONDS * rate and max_seconds is None:
        raise MediaError(f"{path}: {info.frames / rate:.0f} s of audio is over MAX_AUDIO_SECONDS="
                         f"{MAX_AUDIO_SECONDS}; pass max_seconds= to cut it")
    want = info.frames if max_seconds is None else min(info.frames, round(float(max_seconds) * rate))
    if path.suffix.lower() == ".wav" and _riff_truncated(path):
        raise MediaError(f"{path}: truncated WAV: the header promises more data than the file holds")
    try:
        data, _ = sf.read(str(path), frames=want, dtype="float32", always_2d=True)
    except Exception as e:
        raise MediaError(f"{path}: corrupt or truncated audio: {_reason(e)}") from e
    if 0 < len(data) < want * (1 - _TRUNCATION_SLACK):
        raise MediaError(f"{path}: truncated audio: decoded {len(data)} of the {want} samples its header promises")
    return data, rate


def _read_audio_librosa(path: Path, max_seconds: float | None, first: Exception) -> tuple[np.ndarray, int]:
    import librosa  # imported late: it is slow to import and only needed here and for resampling

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "PySoundFile failed. Trying audioread instead."
            data, rate = librosa.load(str(path), sr=None, mono=False, duration=max_seconds)
    except Exception as e:
        raise MediaError(f"{path}: not a readable audio file (corrupt, truncated or an unsupported codec): "
                         f"soundfile said {_reason(first)!r}; audioread said {_reason(e)!r}") from e
    data = np.atleast_2d(data).T  # librosa gives (channels, n)
    if max_seconds is None and len(data) > MAX_AUDIO_SECONDS * rate:
        raise MediaError(f"{path}: {len(data) / rate:.0f} s of audio is over MAX_AUDIO_SECONDS="
                         f"{MAX_AUDIO_SECONDS}; pass max_seconds= to cut it")
    return data, int(rate)


def load_audio(src: str | os.PathLike | np.ndarray, sample_rate: int, source_rate: int | None = None,
               max_seconds: float | None = None) -> np.ndarray:
    """Audio as ``(n,)`` float32 mono at ``sample_rate`` Hz, from a file or an array.

    Files carry their own rate; an array needs ``source_rate``. Channels are averaged, then the signal is
    resampled (librosa, soxr). ``max_seconds`` keeps only the start of longer audio; without it, audio longer
    than ``MAX_AUDIO_SECONDS`` raises ``MediaError``.
    """
    sample_rate = _check_rate(sample_rate, "sample_rate")
    if max_seconds is not None and not (isinstance(max_seconds, numbers.Real) and max_seconds > 0):
        raise MediaError(f"max_seconds must be a positive number of seconds, got {max_seconds!r}")
    if _is_path(src):
        path = _check_file(src, "audio")
        data, rate = _read_audio(path, max_seconds)
        what = str(path)
        if len(data) == 0:
            raise MediaError(f"{path}: has no samples (zero-length or truncated audio)")
    else:
        what = "audio array"
        if source_rate is None:
            raise MediaError("an audio array needs source_rate= (the rate it was recorded at, in Hz)")
        rate = _check_rate(source_rate, "source_rate")
        data = src
    wave = _audio_array(data, what, channels_last=_is_path(src))
    if max_seconds is not None:
        wave = wave[: round(float(max_seconds) * rate)]
    elif len(wave) > MAX_AUDIO_SECONDS * rate:
        raise MediaError(f"{what}: {len(wave) / rate:.0f} s of audio is over MAX_AUDIO_SECONDS="
                         f"{MAX_AUDIO_SECONDS}; pass max_seconds= to cut it")
    mono = wave.mean(axis=1)
    if rate != sample_rate:
        import librosa

        mono = librosa.resample(mono, orig_sr=rate, target_sr=sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


_AUDIO_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"),
                  ".mp3": ("MP3", "MPEG_LAYER_III")}


def save_audio(arr: np.ndarray, path: str | os.PathLike, sample_rate: int) -> Path:
    """Save ``(n,)`` or multi-channel audio in [-1, 1] (clipped); WAV/FLAC are 16-bit PCM. Returns the path."""
    path = _target(path, "audio")
    sample_rate = _check_rate(sample_rate, "sample_rate")
    wave = np.clip(_audio_array(arr), -1.0, 1.0)
    fmt, subtype = _AUDIO_FORMATS[path.suffix.lower()]
    if fmt not in sf.available_formats():
        raise MediaError(f"{path}: this libsndfile ({sf.__libsndfile_version__}) cannot write {fmt}; "
                         f"save as .wav or .flac instead")
    with _atomic(path) as tmp:
        sf.write(str(tmp), wave, sample_rate, format=fmt, subtype=subtype)
    return path


# ---- video -------------------------------------------------------------------------------------------------------
def _video_array(src, what: str = "video array") -> np.ndarray:
    a = _as_array(src, what)
    if a.ndim != 4 or a.shape[-1] not in (1, 2, 3, 4):
        hint = "; for a grey clip add a channel axis: arr[..., None]" if a.ndim == 3 else ""
        raise MediaError(f"{what}: expected shape (T, H, W, 3) (or 1, 2, 4 channels), got {a.shape}{hint}")
    if 0 in a.shape:
        raise MediaError(f"{what}: has no frames or no pixels (shape {a.shape})")
    _check_pixels(a.shape[2], a.shape[1], what)
    return _to_rgb(a, what)


def _check_clip(path: Path, frames: float, pixels: float, slack: float = 1.0) -> None:
    """Refuse a clip of more than MAX_VIDEO_FRAMES_READ frames or MAX_VIDEO_PIXELS decoded pixels in all.

    Called with the header's numbers before decoding (``slack`` > 1 when they are an estimate), then as it decodes.
    """
    about = "about " if slack > 1 else ""
    if frames > MAX_VIDEO_FRAMES_READ * slack:
        raise MediaError(f"{path}: {about}{frames:,.0f} frames is over MAX_VIDEO_FRAMES_READ="
                         f"{MAX_VIDEO_FRAMES_READ:,}; cut the clip first (e.g. ffmpeg -t 10)")
    if pixels > MAX_VIDEO_PIXELS * slack:
        raise MediaError(f"{path}: {about}{frames:,.0f} frames of {pixels / max(frames, 1):,.0f} pixels is "
                         f"{pixels:,.0f} pixels to decode, over MAX_VIDEO_PIXELS={MAX_VIDEO_PIXELS:,} (a guard against "
                         f"decompression bombs); cut or downscale it first (e.g. ffmpeg -t 10 -vf scale=640:-2)")


def _read_gif(path: Path, frames: int) -> np.ndarray:
    """``frames`` frames of a GIF, sampled by time (PIL composes each frame over the ones before it).

    The frame times come first, read from the blocks (``video.gif_table``): so the limits are checked before
    decoding, only the sampled frames become arrays, and decoding stops at the last of them.
    """
    with Image.open(path) as img:
        if img.format != "GIF":
            raise MediaError(f"{path}: is a {img.format} file, not a GIF")
        delays, (w, h) = gif_table(path, MAX_VIDEO_FRAMES_READ)
        _check_pixels(w, h, str(path))
        _check_clip(path, len(delays), len(delays) * w * h)
        if not delays:
            raise MediaError(f"{path}: contains no video frames")
        wanted = _sample_evenly(np.cumsum([0.0] + delays[:-1]), sum(delays), frames)
        kept, pixels, keep, last = {}, 0, set(wanted.tolist()), int(wanted[-1])
        for i, frame in enumerate(ImageSequence.Iterator(img)):
            _check_pixels(frame.width, frame.height, str(path))  # again as PIL decodes, in case it reads otherwise
            pixels += frame.width * frame.height
            _check_clip(path, i + 1, pixels)
            if i in keep:
                kept[i] = _pil_to_rgb(frame, str(path))
            if i == last:
                break
    if last not in kept:
        raise MediaError(f"{path}: truncated GIF: its blocks promise {len(delays)} frames, PIL decoded fewer")
    return np.stack([kept[i] for i in wanted])


def _read_ffmpeg(path: Path, frames: int) -> np.ndarray:
    """``frames`` frames of an MP4 / WebM, sampled evenly, streamed from one ffmpeg process.

    The header only estimates the frame count (duration x fps), so frames are kept in a bounded, evenly strided
    buffer while decoding: when it is full, every other kept frame is dropped and the stride doubles.
    """
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = next(reader)
        w, h = meta["size"]
        _check_pixels(w, h, str(path))
        estimate = (meta.get("duration") or 0) * (meta.get("fps") or 0)
        _check_clip(path, estimate, estimate * w * h, slack=1.05)
        budget = max(2 * frames, min(max(64, 16 * frames), _BUFFER_PIXELS // (w * h)))
        kept, stride, count = [], 1, 0
        for raw in reader:
            count += 1
            _check_clip(path, count, count * w * h)
            if (count - 1) % stride == 0:
                kept.append(np.frombuffer(raw, np.uint8).reshape(h, w, 3))
                if len(kept) >= budget:
                    kept, stride = kept[::2], stride * 2
    finally:
        reader.close()  # stops ffmpeg if we leave early
    if not kept:
        raise MediaError(f"{path}: contains no video frames")
    return np.stack([kept[i] for i in _sample_evenly(np.arange(len(kept)) * stride, count, frames)])


def _sample_evenly(starts: np.ndarray, total: float, frames: int) -> np.ndarray:
    """Indices of the frames showing at the centres of ``frames`` equal slices of the clip's time [0, total).

    Longer clips give evenly spaced, increasing indices; shorter ones repeat frames in order.
    """
    times = (np.arange(frames) + 0.5) * total / frames
    return np.searchsorted(starts, times, side="right") - 1


def load_video(src: str | os.PathLike | np.ndarray, frames: int = 8) -> np.ndarray:
    """A clip as ``(frames, H, W, 3)`` uint8 RGB: ``frames`` frames sampled evenly over its time.

    From an MP4/WebM (ffmpeg), a GIF (PIL, honouring per-frame durations) or a ``(T, H, W, 3)`` array.
    Clips shorter than ``frames`` repeat frames, in order. A file over ``MAX_IMAGE_PIXELS`` a frame,
    ``MAX_VIDEO_FRAMES_READ`` frames or ``MAX_VIDEO_PIXELS`` in all is refused from its header, before decoding.
    """
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise MediaError(f"frames must be a positive whole number, got {frames!r}")
    if not _is_path(src):
        clip = _video_array(src)
        return clip[_sample_evenly(np.arange(len(clip)), len(clip), int(frames))]
    path = _check_file(src, "video")
    try:
        return (_read_gif if path.suffix.lower() == ".gif" else _read_ffmpeg)(path, int(frames))
    except MediaError:
        raise
    except Exception as e:  # ffmpeg: "Invalid data found", "moov atom not found"; PIL: "truncated", …
        raise MediaError(f"{path}: not a readable video (corrupt or truncated?): {_reason(e)}") from e


def save_video(frames: np.ndarray, path: str | os.PathLike, fps: int = 8) -> Path:
    """Save a ``(T, H, W, 3)`` clip: MP4 (H.264, yuv420p), WebM (VP8) or GIF. Returns the path.

    MP4 and WebM need even sizes: an odd height or width is padded by one repeated row or column.
    """
    path = _target(path, "video")
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)) or not fps > 0:
        raise MediaError(f"fps must be a positive number, got {fps!r}")
    clip = _video_array(frames)
    with _atomic(path) as tmp:
        write_clip(clip, tmp, float(fps))
    return path


# ---- one entry point ---------------------------------------------------------------------------------------------
def load(src, modality: str, **kw) -> np.ndarray:
    """``load_image``, ``load_audio`` or ``load_video`` by name; keyword arguments pass through."""
    loaders = {"image": load_image, "audio": load_audio, "video": load_video}
    if modality not in loaders:
        raise MediaError(f"unknown modality {modality!r}; expected one of {', '.join(loaders)}")
    return loaders[modality](src, **kw)
