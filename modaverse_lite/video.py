"""Video containers at the level of bytes and processes, for ``media.py``: a GIF's frame times and canvas size read
from its blocks without decoding a pixel, and the writers (PIL for GIF, one ffmpeg process for MP4 and WebM).

This module decides nothing: ``media.py`` owns the limits and the checks, and passes in what it needs.

A GIF is a header, an optional colour table, then blocks, each opened by one byte: ``!`` an extension (a label,
then sub-blocks; the *graphic control* extension, label ``0xF9``, holds the next frame's delay in 1/100 s), ``,`` an
image (a 9-byte descriptor, an optional local colour table, the LZW code size, then sub-blocks of data), and ``;``
the end. A sub-block is a length byte and that many bytes; a zero length ends the run. Walking them costs one step
per 255 bytes and decodes nothing.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

DEFAULT_GIF_DELAY_MS = 100.0  # a frame with no delay, or a delay of 0: what browsers show


def _colour_table(flags: int) -> int:
    """Bytes of the colour table a header or an image descriptor announces in its flags byte."""
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _after_sub_blocks(data, pos: int) -> int:
    """The position just past the run of sub-blocks that starts at ``pos``."""
    while pos < len(data) and data[pos]:
        pos += data[pos] + 1
    return pos + 1


def gif_table(path: str | Path, limit: int) -> tuple[list[float], tuple[int, int]]:
    """A GIF's frame times in ms and the size its canvas reaches, walking the blocks as PIL does, decoding nothing.

    The canvas is the header's screen, grown to hold every frame (PIL grows it when a frame lies outside). The walk
    stops after ``limit`` + 1 frames, which bounds what a file of a million empty frames costs. Not a GIF: ``[]``.
    """
    delays, delay = [], 0
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < 13:
            return [], (0, 0)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:  # the OS pages it in; nothing is copied
            if data[:6] not in (b"GIF87a", b"GIF89a"):
                return [], (0, 0)
            width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
            pos, end = 13 + _colour_table(data[10]), len(data)
            while len(delays) <= limit and pos < end and data[pos] != 0x3B:  # ";" ends the file
                kind, pos = data[pos], pos + 1
                if kind == 0x21 and pos < end:  # "!": an extension label, then sub-blocks
                    if data[pos] == 0xF9 and pos + 4 < end and data[pos + 1] >= 3:  # graphic control: the delay
                        delay = int.from_bytes(data[pos + 3:pos + 5], "little") * 10
                    pos = _after_sub_blocks(data, pos + 1)
                elif kind == 0x2C:  # ",": an image descriptor, a local colour table, the LZW code size, sub-blocks
                    if pos + 9 > end:
                        break
                    x, y, w, h = (int.from_bytes(data[pos + i:pos + i + 2], "little") for i in range(0, 8, 2))
                    width, height = max(width, x + w), max(height, y + h)
                    pos = _after_sub_blocks(data, pos + 9 + _colour_table(data[pos + 8]) + 1)
                    delays.append(float(delay or DEFAULT_GIF_DELAY_MS))
                    delay = 0  # a delay belongs to the one frame after it
    return delays, (width, height)


def _pad_even(clip: np.ndarray) -> np.ndarray:
    """Repeat the last row / column so height and width are even, as yuv420p requires."""
    pad_h, pad_w = clip.shape[1] % 2, clip.shape[2] % 2
    if pad_h or pad_w:
        clip = np.pad(clip, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return np.ascontiguousarray(clip)


_FFMPEG_CODECS = {".mp4": ("libx264", ["-crf", "18", "-preset", "veryfast"]),
                  ".webm": ("libvpx", ["-crf", "10", "-b:v", "1M"])}


def write_clip(clip: np.ndarray, path: Path, fps: float) -> None:
    """Write a ``(T, H, W, 3)`` uint8 clip as the extension says: GIF (PIL), MP4 (H.264) or WebM (VP8).

    MP4 and WebM need even sizes: an odd height or width is padded by one repeated row or column.
    """
    if path.suffix.lower() == ".gif":
        images = [Image.fromarray(f) for f in clip]
        images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=1000.0 / fps, loop=0)
        return
    clip = _pad_even(clip)
    codec, params = _FFMPEG_CODECS[path.suffix.lower()]
    writer = imageio_ffmpeg.write_frames(str(path), (clip.shape[2], clip.shape[1]), fps=float(fps), codec=codec,
                                         quality=None, macro_block_size=2, ffmpeg_log_level="error",
                                         output_params=params)
    writer.send(None)  # start ffmpeg
    for frame in clip:
        writer.send(frame)
    writer.close()
