"""Hostile and careless input: files that are small on disk but huge once decoded, files too big to read whole, and
text that makes a parser slow. Each is refused (or read) fast, in bounded memory, with a message naming the limit.

Every check runs under ``_guard``: a cap on the address space and the clock, so that a regression fails in seconds
with a MemoryError or a TimeoutError instead of swapping the machine for minutes.
"""

from __future__ import annotations

import hashlib
import signal
import struct
import time
import tracemalloc
import weakref
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from modaverse_lite import encode, media, meta, video
from modaverse_lite.errors import MediaError
from modaverse_lite.meta import Segment, parse

MB = 1 << 20

try:
    import resource
except ImportError:  # Windows: no guard, only the assertions
    resource = None


@contextmanager
def _guard(seconds: float = 20, extra_bytes: int = 3 << 30):
    """At most ``seconds`` of wall time and ``extra_bytes`` more address space for the block (Linux)."""
    def timeout(*_):
        raise TimeoutError(f"still running after {seconds} s")

    old_limit = None
    if resource is not None and Path("/proc/self/statm").exists():
        used = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
        old_limit = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (used + extra_bytes, old_limit[1]))
    clock = hasattr(signal, "SIGALRM")  # POSIX only
    if clock:
        old_handler = signal.signal(signal.SIGALRM, timeout)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if clock:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_handler)
        if old_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, old_limit)


@contextmanager
def _measured(trace: bool = True):
    """Yield a dict that gets the block's ``seconds`` and, traced, its ``peak_mb`` of Python and numpy allocations.

    Tracing slows every allocation down, so timings of allocation-heavy code (the parser) are taken untraced.
    """
    out: dict[str, float] = {}
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        with _guard():
            yield out
    finally:
        out["seconds"] = time.perf_counter() - start
        if trace:
            out["peak_mb"] = tracemalloc.get_traced_memory()[1] / MB
            tracemalloc.stop()


# ---- decompression bombs -----------------------------------------------------------------------------------------
def gif_bomb(path: Path, side: int, n_frames: int, screen: int | None = None, at: tuple[int, int] = (0, 0)) -> Path:
    """A GIF of ``n_frames`` 1x1 frames on a ``side`` x ``side`` canvas, written block by block.

    About 23 bytes a frame on disk, but every frame decodes to the whole canvas (GIF frames are drawn over the ones
    before them), so 1,000 frames of 6000x6000 is 23 kB to store and 36 billion pixels to decode. ``screen`` and
    ``at`` declare a smaller canvas and place the frames at an offset, which makes PIL grow the canvas as it goes.
    """
    w = h = side if screen is None else screen
    head = b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"  # 2-colour palette
    frames = []
    for i in range(n_frames):
        control = b"\x21\xf9\x04\x04" + struct.pack("<H", 2) + b"\x00\x00"  # keep the frame, 20 ms
        x, y = at if i else (0, 0)
        image = b"\x2c" + struct.pack("<HHHHB", x, y, 1, 1, 0)
        code = 4 | ((i % 2) << 3) | (5 << 6)  # LZW with 3-bit codes: clear, pixel 0 or 1, end of data
        frames.append(control + image + b"\x02\x02" + struct.pack("<H", code) + b"\x00")
    path.write_bytes(head + b"".join(frames) + b"\x3b")
    return path


def test_gif_bomb_helper_makes_what_it_says(tmp_path):
    path = gif_bomb(tmp_path / "small.gif", 6, 5)
    clip = media.load_video(path, frames=5)
    assert clip.shape == (5, 6, 6, 3)
    assert (clip[0, 0, 0] == 0).all() and (clip[1, 0, 0] == 255).all() and (clip[:, 1:, 1:] == 0).all()


@pytest.mark.parametrize("side, n_frames, limit", [
    (6000, 1_000, "MAX_VIDEO_PIXELS"),  # 36 G pixels to decode
    (6000, 10_001, "MAX_VIDEO_FRAMES_READ"),  # the bomb: 230 kB on disk
    (8, 10_001, "MAX_VIDEO_FRAMES_READ"),  # tiny frames, too many of them
    (7000, 1, "MAX_IMAGE_PIXELS"),  # one frame over the per-frame limit
])
def test_gif_bomb_is_refused_before_decoding(tmp_path, monkeypatch, side, n_frames, limit):
    path = gif_bomb(tmp_path / "bomb.gif", side, n_frames)
    assert path.stat().st_size < 300_000
    converted = []
    real = media._pil_to_rgb
    monkeypatch.setattr(media, "_pil_to_rgb", lambda img, what: converted.append(1) or real(img, what))
    with _measured() as cost, pytest.raises(MediaError, match=limit) as e:
        media.load_video(path)
    assert str(path) in str(e.value)
    assert converted == []  # not a single frame became an array
    assert cost["seconds"] < 5 and cost["peak_mb"] < 32, cost


def test_gif_whose_frames_outgrow_its_header_is_refused_before_decoding(tmp_path, monkeypatch):
    # the header says 1x1 and frame 0 fits it; later frames sit at (5999, 5999), so PIL grows the canvas to 6000x6000
    path = gif_bomb(tmp_path / "grows.gif", 6000, 2_000, screen=1, at=(5999, 5999))
    converted = []
    real = media._pil_to_rgb
    monkeypatch.setattr(media, "_pil_to_rgb", lambda img, what: converted.append(1) or real(img, what))
    with _measured() as cost, pytest.raises(MediaError, match="MAX_VIDEO_PIXELS"):
        media.load_video(path)
    assert converted == [] and cost["seconds"] < 5 and cost["peak_mb"] < 32, cost


def test_the_pixel_total_is_counted_again_while_decoding(tmp_path, monkeypatch):
    # should the block walk and PIL ever disagree, the total is counted frame by frame as PIL decodes
    path = gif_bomb(tmp_path / "grows.gif", 2000, 2_000, screen=1, at=(1999, 1999))
    monkeypatch.setattr(media, "gif_table", lambda p, limit: ([100.0] * 2_000, (1, 1)))  # a walk that saw no growth
    monkeypatch.setattr(media, "MAX_VIDEO_PIXELS", 40 * 2000 * 2000)
    with _measured() as cost, pytest.raises(MediaError, match="MAX_VIDEO_PIXELS"):
        media.load_video(path)
    assert cost["seconds"] < 10 and cost["peak_mb"] < 32, cost


@pytest.mark.parametrize("n_frames", [1, 2, 7])
def test_gif_table_agrees_with_pil(tmp_path, n_frames):
    clip = np.random.default_rng(n_frames).integers(0, 256, (n_frames, 9, 7, 3), np.uint8)
    path = media.save_video(clip, tmp_path / "c.gif", fps=4)
    delays, size = video.gif_table(path, limit=100)
    with Image.open(path) as img:
        assert (len(delays), size) == (img.n_frames, img.size)
        assert delays == [float(f.info.get("duration") or 100) for f in ImageSequence.Iterator(img)]
    assert video.gif_table(path, limit=0)[0] == delays[:1]  # the walk stops one frame past the limit
    grown = gif_bomb(tmp_path / "g.gif", 50, 3, screen=1, at=(40, 30))
    assert video.gif_table(grown, limit=100) == ([20.0] * 3, (41, 31))


def test_a_clip_at_the_pixel_limit_still_loads(tmp_path, monkeypatch):
    path = gif_bomb(tmp_path / "edge.gif", 100, 50)
    monkeypatch.setattr(media, "MAX_VIDEO_PIXELS", 50 * 100 * 100)
    assert media.load_video(path, frames=4).shape == (4, 100, 100, 3)
    monkeypatch.setattr(media, "MAX_VIDEO_PIXELS", 50 * 100 * 100 - 1)
    with pytest.raises(MediaError, match="MAX_VIDEO_PIXELS"):
        media.load_video(path, frames=4)


def test_a_full_size_clip_keeps_few_frames_in_memory(tmp_path):
    # 300 frames of 1000x1000: sampling 8 of them must not hold a buffer of 128 full frames (384 MB)
    path = gif_bomb(tmp_path / "long.gif", 1000, 300)
    with _measured() as cost:
        clip = media.load_video(path, frames=8)
    assert clip.shape == (8, 1000, 1000, 3)
    assert cost["peak_mb"] < 200, cost


@pytest.mark.parametrize("ext", [".mp4", ".webm"])
@pytest.mark.parametrize("limit, value", [("MAX_VIDEO_PIXELS", 8 * 64 * 64), ("MAX_VIDEO_FRAMES_READ", 8)])
def test_ffmpeg_clip_over_a_limit_is_refused_from_its_header(tmp_path, monkeypatch, ext, limit, value):
    path = media.save_video(np.zeros((16, 64, 64, 3), np.uint8), tmp_path / f"clip{ext}")
    frames_read = []
    real = media.imageio_ffmpeg.read_frames

    def counting(*args, **kw):
        for i, item in enumerate(real(*args, **kw)):
            frames_read.append(i)  # item 0 is the metadata, then one per frame
            yield item

    monkeypatch.setattr(media.imageio_ffmpeg, "read_frames", counting)
    monkeypatch.setattr(media, limit, value)  # half the clip
    with pytest.raises(MediaError, match=limit) as e:
        media.load_video(path)
    assert str(path) in str(e.value) and frames_read == [0]  # refused from the metadata alone


def test_ffmpeg_sampling_buffer_is_bounded_in_pixels(tmp_path, monkeypatch):
    n, side = 100, 16
    levels = (np.arange(n) * 2).astype(np.uint8)
    path = media.save_video(np.broadcast_to(levels[:, None, None, None], (n, side, side, 3)), tmp_path / "c.mp4")
    monkeypatch.setattr(media, "_BUFFER_PIXELS", 20 * side * side)  # room for 20 frames, not 128
    refs, most, real = [], [0], np.frombuffer

    def tracked(*args, **kw):  # every decoded frame becomes an array here; count those still held
        frame = real(*args, **kw)
        refs.append(weakref.ref(frame))
        most[0] = max(most[0], sum(r() is not None for r in refs))
        return frame

    monkeypatch.setattr(np, "frombuffer", tracked)
    ids = np.round(media.load_video(path, frames=8).reshape(8, -1).mean(axis=1) / 2)
    exact = np.floor((np.arange(8) + 0.5) * n / 8)
    assert (np.diff(ids) > 0).all() and np.abs(ids - exact).max() <= 8  # even to within the final stride of 8
    assert most[0] <= 20


def test_png_bomb_is_refused_fast(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(path)  # 100 M pixels in about 12 kB
    assert path.stat().st_size < 100_000
    with _measured() as cost, pytest.raises(MediaError, match="MAX_IMAGE_PIXELS") as e:
        media.load_image(path)
    assert str(path) in str(e.value)
    assert cost["seconds"] < 2 and cost["peak_mb"] < 16, cost


# ---- hashing a big file ------------------------------------------------------------------------------------------
def test_content_hash_is_the_sha256_of_the_bytes(tmp_path):
    for size in (0, 1, MB - 1, MB, 3 * MB + 17):
        data = np.random.default_rng(size).integers(0, 256, size, np.uint8).tobytes()
        path = tmp_path / f"f{size}.bin"
        path.write_bytes(data)
        assert encode.content_hash(path) == hashlib.sha256(data).hexdigest()
        assert encode.content_hash(str(path)) == encode.content_hash(path)


def test_content_hash_never_reads_a_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")

    def whole(self):
        raise AssertionError(f"read_bytes({self}) holds the whole file in memory")

    monkeypatch.setattr(Path, "read_bytes", whole)
    assert encode.content_hash(path) == hashlib.sha256(b"abc").hexdigest()


def test_content_hash_of_a_big_file_uses_little_memory(tmp_path):
    path = tmp_path / "sparse.bin"
    with open(path, "wb") as f:
        f.truncate(200 * MB)  # sparse: costs no disk
    with _measured() as cost:
        digest = encode.content_hash(path)
    zeros = hashlib.sha256()
    for _ in range(200):
        zeros.update(bytes(MB))
    assert digest == zeros.hexdigest()
    assert cost["peak_mb"] < 16, cost


# ---- meta-responses that make a parser slow ---------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "Prompt: " * 200_000,
    "Modality: [IMAGE] Prompt: " + "Prompt: " * 200_000,  # a stuttered marker, 200k times
    "Modality: [IMAGE] Prompt: x " * 100_000,
    "modality: [image] prompt: x\n" * 100_000,
    "Modality: " * 200_000,
    "Modality: [IMAG " * 100_000,
    "Modality: [TEXT] Prompt: " + "a [ b " * 200_000,
])
def test_hostile_responses_are_read_in_linear_time_and_stay_bounded(text):
    with _measured(trace=False) as cost:
        r = parse(text)
    assert cost["seconds"] < 1.0, cost
    assert 1 <= len(r.segments) <= 2 * meta.MAX_SEGMENTS + 1
    assert sum(s.modality != "text" for s in r.segments) <= meta.MAX_SEGMENTS
    assert len(r.notes) <= 3 * meta.MAX_SEGMENTS + 2
    assert r.ok == (not r.notes)


def test_stuttered_prompt_200k_times_is_one_text_segment():
    text = "Modality: [IMAGE] Prompt: " + "Prompt: " * 200_000
    r = parse(text)
    assert r.segments == (Segment("text", text.strip()),) and not r.ok
    assert "empty prompt" in r.notes[0]


def test_segments_past_the_limit_are_dropped_with_a_note():
    n = meta.MAX_SEGMENTS
    at_limit = parse("\n".join(f"Modality: [IMAGE] Prompt: picture {i}" for i in range(n)))
    assert at_limit.ok and len(at_limit.segments) == n
    over = parse("\n".join(f"Modality: [IMAGE] Prompt: picture {i}" for i in range(n + 5)))
    assert over.segments == at_limit.segments
    assert len(over.notes) == 1 and f"MAX_SEGMENTS={n}" in over.notes[0]
    assert f"picture {n}" in over.notes[0]  # the note shows where the dropped part begins


def test_only_empty_markers_past_the_limit_keep_the_read_part_as_text():
    r = parse("Modality: " * 200_000)
    assert len(r.segments) == 1 and r.modality == "text"
    assert len(r.prompt) < 20 * meta.MAX_SEGMENTS
    assert any("MAX_SEGMENTS" in note for note in r.notes)


def test_parse_is_linear_without_the_segment_limit_too(monkeypatch):
    monkeypatch.setattr(meta, "MAX_SEGMENTS", 10**9)
    text = "Modality: [IMAGE] Prompt: Prompt: a red circle\n" * 50_000
    with _measured(trace=False) as cost:
        r = parse(text)
    assert len(r.segments) == 50_000 and cost["seconds"] < 2.0, cost
