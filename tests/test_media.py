"""media.py: every modality round-trips through every extension, and every kind of bad input is a MediaError."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from modaverse_lite import media
from modaverse_lite.errors import MediaError
from modaverse_lite.world import SAMPLE_RATE, render

ALL_EXTS = media.IMAGE_EXTS + media.AUDIO_EXTS + media.VIDEO_EXTS
RATE = {"sample_rate": SAMPLE_RATE}


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return render("image", {"colour": "orange", "shape": "triangle"}, seed=1).data


@pytest.fixture(scope="module")
def tone() -> np.ndarray:
    return render("audio", {"pitch": "mid", "timbre": "sine"}, seed=2).data


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return render("video", {"colour": "blue", "shape": "square", "direction": "right"}, seed=3).data


@pytest.fixture(scope="module")
def good_files(tmp_path_factory, image, tone, clip) -> dict[str, Path]:
    """One valid file per extension, written by media itself."""
    d = tmp_path_factory.mktemp("good")
    files = {}
    for ext in media.IMAGE_EXTS:
        files[ext] = media.save_image(image, d / f"image{ext}")
    for ext in media.AUDIO_EXTS:
        files[ext] = media.save_audio(tone, d / f"audio{ext}", SAMPLE_RATE)
    for ext in media.VIDEO_EXTS:
        files[ext] = media.save_video(clip, d / f"video{ext}")
    return files


def _load(path, **kw):
    modality = media.modality_of(path)
    return media.load(path, modality, **(RATE if modality == "audio" else {}), **kw)


def _peak_hz(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


# ---- modality_of and load ----------------------------------------------------------------------------------------
def test_modality_of_every_extension():
    for modality, exts in media.EXTS.items():
        for ext in exts:
            assert media.modality_of(f"dir/clip{ext}") == modality
            assert media.modality_of(Path(f"CLIP{ext.upper()}")) == modality
            assert media.modality_of(ext) == modality


@pytest.mark.parametrize("name", ["notes.txt", "weights.safetensors", "no_extension"])
def test_modality_of_unknown_extension(name):
    with pytest.raises(MediaError, match=name):
        media.modality_of(name)


def test_load_dispatches_and_names_unknown_modality(good_files):
    assert np.array_equal(media.load(good_files[".png"], "image"), media.load_image(good_files[".png"]))
    assert media.load(good_files[".wav"], "audio", sample_rate=8000).shape == (8000,)
    assert media.load(good_files[".gif"], "video", frames=4).shape[0] == 4
    with pytest.raises(MediaError, match="'smell'"):
        media.load(good_files[".png"], "smell")


# ---- bad files: every reason, every extension --------------------------------------------------------------------
@pytest.mark.parametrize("ext", ALL_EXTS)
def test_missing_file(tmp_path, ext):
    path = tmp_path / f"nothing{ext}"
    with pytest.raises(MediaError, match="no such file") as e:
        _load(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("ext", [".png", ".wav", ".mp4"])
def test_directory(tmp_path, ext):
    path = tmp_path / f"folder{ext}"
    path.mkdir()
    with pytest.raises(MediaError, match="directory") as e:
        _load(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("modality", media.EXTS)
def test_unknown_extension(tmp_path, modality, good_files):
    path = tmp_path / "media.bin"
    path.write_bytes(good_files[media.EXTS[modality][0]].read_bytes())
    with pytest.raises(MediaError, match=r"extension '\.bin'") as e:
        media.load(path, modality, **(RATE if modality == "audio" else {}))
    assert str(path) in str(e.value)


def test_extension_of_another_modality_says_which(good_files):
    with pytest.raises(MediaError, match="looks like audio"):
        media.load_image(good_files[".wav"])
    with pytest.raises(MediaError, match="looks like image"):
        media.load_video(good_files[".png"])


@pytest.mark.parametrize("ext", ALL_EXTS)
def test_empty_file(tmp_path, ext):
    path = tmp_path / f"empty{ext}"
    path.touch()
    with pytest.raises(MediaError, match="empty") as e:
        _load(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("ext", ALL_EXTS)
def test_corrupt_file(tmp_path, ext):
    path = tmp_path / f"noise{ext}"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(MediaError) as e:
        _load(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("ext", ALL_EXTS)
def test_truncated_file(tmp_path, ext, good_files):
    data = good_files[ext].read_bytes()
    path = tmp_path / f"half{ext}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError) as e:
        _load(path)
    assert str(path) in str(e.value)


def test_zero_length_audio_file(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(0, np.float32), SAMPLE_RATE)
    assert sf.info(path).frames == 0 and path.stat().st_size > 0  # a valid file with no samples
    with pytest.raises(MediaError, match="no samples") as e:
        media.load_audio(path, SAMPLE_RATE)
    assert str(path) in str(e.value)


def test_nan_audio_file(tmp_path, tone):
    path = tmp_path / "nan.wav"
    bad = tone.copy()
    bad[100:110] = np.nan
    sf.write(path, bad, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(MediaError, match="10 of .* NaN") as e:
        media.load_audio(path, SAMPLE_RATE)
    assert str(path) in str(e.value)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims a size but holds no pixels: what a decompression bomb looks like before decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [7_000, 20_000])  # over our limit only / over PIL's own bomb limit too
def test_huge_image_header_is_refused(tmp_path, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(side, side))
    with pytest.raises(MediaError, match="limit") as e:
        media.load_image(path)
    assert str(path) in str(e.value)


def test_pixel_limit_applies_to_every_source(monkeypatch, image, clip, good_files):
    monkeypatch.setattr(media, "MAX_IMAGE_PIXELS", 1000)  # 64x64 = 4096 pixels
    for load, src in [(media.load_image, good_files[".png"]), (media.load_image, image),
                      (media.load_image, Image.fromarray(image)), (media.load_video, clip),
                      (media.load_video, good_files[".gif"]), (media.load_video, good_files[".mp4"])]:
        with pytest.raises(MediaError, match="MAX_IMAGE_PIXELS"):
            load(src)


def test_long_audio_needs_max_seconds(monkeypatch, tone, good_files):
    monkeypatch.setattr(media, "MAX_AUDIO_SECONDS", 0.5)  # the tone lasts 1 s
    for kw in [{"src": good_files[".wav"]}, {"src": tone, "source_rate": SAMPLE_RATE}]:
        with pytest.raises(MediaError, match="max_seconds"):
            media.load_audio(sample_rate=SAMPLE_RATE, **kw)
        assert media.load_audio(sample_rate=SAMPLE_RATE, max_seconds=0.25, **kw).shape == (SAMPLE_RATE // 4,)


def test_long_video_is_refused(monkeypatch, good_files):
    monkeypatch.setattr(media, "MAX_VIDEO_FRAMES_READ", 4)  # the clip has 8 frames
    for ext in media.VIDEO_EXTS:
        with pytest.raises(MediaError, match="MAX_VIDEO_FRAMES_READ"):
            media.load_video(good_files[ext])


# ---- bad arrays --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arr, reason", [
    (np.zeros((8, 8, 5), np.uint8), "shape"),
    (np.zeros((3, 8, 8), np.uint8), "channel-first"),
    (np.zeros((2, 8, 8, 3), np.uint8), "video or a batch"),
    (np.zeros(8, np.uint8), "shape"),
    (np.zeros((0, 8, 3), np.uint8), "no pixels"),
    (np.full((8, 8, 3), 2.0), r"\[0, 1\]"),
    (np.full((8, 8, 3), np.nan), "NaN"),
    (np.full((8, 8), 300), r"\[0, 255\]"),
    (np.full((8, 8, 3), "red"), "numeric"),
    (np.zeros((8, 8, 3), complex), "dtype"),
])
def test_bad_image_arrays(arr, reason):
    with pytest.raises(MediaError, match=reason):
        media.load_image(arr)


SOURCE = {"source_rate": SAMPLE_RATE}


@pytest.mark.parametrize("arr, kw, reason", [
    (np.zeros(100, np.float32), {}, "source_rate"),
    (np.zeros(100, np.float32), {"source_rate": 0}, "source_rate"),
    (np.zeros(0, np.float32), SOURCE, "no samples"),
    (np.zeros((0, 2), np.float32), SOURCE, "no samples"),
    (np.full(100, np.nan, np.float32), SOURCE, "NaN"),
    (np.full(100, np.inf, np.float32), SOURCE, "infinite"),
    (np.r_[np.zeros(99), np.nan].astype(np.float32), SOURCE, "1 of 100"),
    (np.zeros((2, 2, 100), np.float32), SOURCE, "shape"),
    (np.zeros((20, 30), np.float32), SOURCE, "channel axis"),
    (np.zeros(100, np.int64), SOURCE, "ambiguous"),
])
def test_bad_audio_arrays(arr, kw, reason):
    with pytest.raises(MediaError, match=reason):
        media.load_audio(arr, SAMPLE_RATE, **kw)


@pytest.mark.parametrize("kw, reason", [({"sample_rate": 0}, "sample_rate"), ({"sample_rate": 16000.5}, "sample_rate"),
                                        ({"sample_rate": 16000, "max_seconds": -1}, "max_seconds")])
def test_bad_audio_arguments(tone, kw, reason):
    with pytest.raises(MediaError, match=reason):
        media.load_audio(tone, source_rate=SAMPLE_RATE, **kw)


@pytest.mark.parametrize("arr, reason", [
    (np.zeros((8, 16, 16), np.uint8), r"arr\[\.\.\., None\]"),
    (np.zeros((1, 8, 16, 16, 3), np.uint8), "shape"),
    (np.zeros((0, 16, 16, 3), np.uint8), "no frames"),
    (np.full((4, 16, 16, 3), 7.0), r"\[0, 1\]"),
])
def test_bad_video_arrays(arr, reason):
    with pytest.raises(MediaError, match=reason):
        media.load_video(arr)


def test_bad_frame_count(clip):
    for frames in (0, -1, 2.5):
        with pytest.raises(MediaError, match="frames"):
            media.load_video(clip, frames=frames)


# ---- images: every mode becomes HxWx3 uint8 RGB ------------------------------------------------------------------
def test_image_arrays_of_every_layout(image):
    grey = image.mean(axis=2).astype(np.uint8)
    for arr in (grey, grey[..., None]):
        out = media.load_image(arr)
        assert out.shape == (*grey.shape, 3) and out.dtype == np.uint8
        assert all(np.array_equal(out[..., c], grey) for c in range(3))
    assert np.array_equal(media.load_image(image.astype(np.float32) / 255), image)
    assert np.array_equal(media.load_image(image.astype(np.uint16) * 257), image)
    assert np.array_equal(media.load_image(np.ones((4, 4), bool)), np.full((4, 4, 3), 255, np.uint8))
    rgba = np.concatenate([image, np.full((*image.shape[:2], 1), 255, np.uint8)], axis=2)
    assert np.array_equal(media.load_image(rgba), image)  # opaque: unchanged
    rgba[..., 3] = 0
    assert (media.load_image(rgba) == 255).all()  # transparent: composited over white


@pytest.mark.parametrize("mode", ["L", "LA", "P", "PA", "RGBA", "CMYK", "I;16", "I", "F", "1"])
def test_image_files_of_every_mode(tmp_path, image, mode):
    pil = Image.fromarray(image)
    grey = np.asarray(pil.convert("L"), np.int32)
    if mode == "I;16":
        pil = Image.fromarray(grey.astype(np.uint16) * 257)  # 16-bit grey, as a 16-bit PNG opens
    elif mode in ("I", "F"):
        pil = pil.convert("L").convert(mode)
    elif mode == "P":
        pil = pil.convert("P", palette=Image.Palette.ADAPTIVE)
    else:
        pil = pil.convert(mode)
    out = media.load_image(pil)
    assert out.shape == (*image.shape[:2], 3) and out.dtype == np.uint8
    if mode in ("L", "LA", "I;16", "I"):
        assert np.abs(out[..., 0].astype(np.int32) - grey).max() <= 1  # 16-bit scales back to 8-bit
    if mode in ("P", "RGBA", "CMYK"):
        assert np.abs(out.astype(np.int32) - image).mean() < 12
    ext = ".jpg" if mode == "CMYK" else ".png"
    if mode not in ("PA", "F", "I"):  # modes PNG or JPEG can hold
        path = tmp_path / f"{mode.replace(';', '')}{ext}"
        pil.save(path)
        assert np.array_equal(media.load_image(path), out if ext == ".png" else media.load_image(path))


def test_png_transparency_is_white(tmp_path):
    Image.new("RGBA", (8, 8), (200, 10, 10, 0)).save(tmp_path / "clear.png")
    Image.new("P", (8, 8), 0).save(tmp_path / "keyed.png", transparency=0)  # palette index 0 is transparent
    for name in ("clear.png", "keyed.png"):
        assert (media.load_image(tmp_path / name) == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(arr).save(path, exif=exif)
    assert media.load_image(path).shape == (40, 20, 3)


# ---- round trips -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", media.IMAGE_EXTS)
def test_image_round_trip(ext, image, good_files):
    out = media.load_image(good_files[ext])
    assert out.shape == image.shape and out.dtype == np.uint8
    error = np.abs(out.astype(np.int32) - image).mean()
    assert error == 0 if ext == ".png" else error < 3


@pytest.mark.parametrize("ext", media.AUDIO_EXTS)
def test_audio_round_trip(ext, tone, good_files):
    out = media.load_audio(good_files[ext], SAMPLE_RATE)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - len(tone)) <= 0.02 * len(tone)
    assert abs(_peak_hz(out, SAMPLE_RATE) - _peak_hz(tone, SAMPLE_RATE)) <= 2
    if ext in (".wav", ".flac"):  # 16-bit PCM: lossless up to quantisation
        assert len(out) == len(tone) and np.abs(out - tone).max() < 1e-4


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100])
def test_resampling_scales_length_and_keeps_pitch(rate, tone, good_files):
    for src, kw in [(good_files[".wav"], {}), (tone, {"source_rate": SAMPLE_RATE})]:
        out = media.load_audio(src, rate, **kw)
        assert abs(len(out) - len(tone) * rate / SAMPLE_RATE) <= 1
        assert abs(_peak_hz(out, rate) - _peak_hz(tone, SAMPLE_RATE)) <= 2


def test_channels_are_averaged_in_every_layout(tmp_path, tone):
    stereo = np.stack([tone, np.zeros_like(tone)], axis=1)  # (n, 2)
    for arr in (stereo, stereo.T):
        assert np.allclose(media.load_audio(arr, SAMPLE_RATE, source_rate=SAMPLE_RATE), tone / 2)
    path = media.save_audio(stereo, tmp_path / "stereo.flac", SAMPLE_RATE)
    assert sf.info(path).channels == 2
    assert np.abs(media.load_audio(path, SAMPLE_RATE) - tone / 2).max() < 1e-4
    pcm = np.round(tone * 32767).astype(np.int16)
    assert np.abs(media.load_audio(pcm, SAMPLE_RATE, source_rate=SAMPLE_RATE) - tone).max() < 1e-4


@pytest.mark.parametrize("ext", media.VIDEO_EXTS)
def test_video_round_trip(ext, clip, good_files):
    out = media.load_video(good_files[ext], frames=len(clip))
    assert out.shape == clip.shape and out.dtype == np.uint8
    error = np.abs(out.astype(np.int32) - clip).mean()
    assert error == 0 if ext == ".gif" else error < 5


@pytest.mark.parametrize("ext", [".mp4", ".webm"])
def test_odd_video_sizes_are_padded_even(tmp_path, ext, clip):
    odd = clip[:, :63, :61]
    out = media.load_video(media.save_video(odd, tmp_path / f"odd{ext}"), frames=len(odd))
    assert out.shape == (len(odd), 64, 62, 3)
    assert np.abs(out[:, :63, :61].astype(np.int32) - odd).mean() < 5


def _counting_clip(n: int, step: int = 4, size: int = 16) -> np.ndarray:
    """Frame i is a flat grey of level step*i: the level tells which frame was sampled, even after lossy codecs."""
    levels = (np.arange(n) * step).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (n, size, size, 3)).copy()


def _frame_ids(video: np.ndarray, step: int = 4) -> np.ndarray:
    return np.round(video.reshape(len(video), -1).mean(axis=1) / step).astype(int)


@pytest.mark.parametrize("source", ["array", ".gif", ".mp4", ".webm"])
def test_frames_are_sampled_evenly_and_in_order(tmp_path, source):
    longer = _counting_clip(32)
    if source != "array":
        longer = media.save_video(longer, tmp_path / f"count{source}")
    ids = _frame_ids(media.load_video(longer, frames=8))
    assert len(ids) == 8 and (np.diff(ids) == 4).all()  # 32 frames, 8 slices: one frame every 4

    shorter = _counting_clip(3)
    if source != "array":
        shorter = media.save_video(shorter, tmp_path / f"short{source}")
    ids = _frame_ids(media.load_video(shorter, frames=8))
    assert len(ids) == 8 and (np.diff(ids) >= 0).all() and set(ids) == {0, 1, 2}  # repeated, in order


@settings(max_examples=60, deadline=None)
@given(length=st.integers(1, 200), frames=st.integers(1, 40))
def test_sampling_property(length, frames):
    ids = media.load_video(np.arange(length, dtype=np.uint8)[:, None, None, None].repeat(3, 3), frames)[:, 0, 0, 0]
    assert len(ids) == frames and ids[0] >= 0 and ids[-1] < length
    gaps = np.diff(ids.astype(int))
    assert (gaps >= 0).all() and (np.ptp(gaps) if len(gaps) else 0) <= 1  # ordered and even
    if length >= frames:
        assert len(set(ids)) == frames  # no repeats when there are enough frames
    else:
        assert set(ids) == set(range(length))  # every frame shown, repeated in order


def test_gif_timing_survives_merged_frames(tmp_path, clip):
    # PIL merges identical consecutive GIF frames into one longer frame; sampling by time undoes that
    held = clip[[0, 0, 0, 5]]
    out = media.load_video(media.save_video(held, tmp_path / "held.gif"), frames=4)
    assert np.array_equal(out, held)


def test_long_gif_is_sampled_evenly_with_bounded_memory(tmp_path):
    n = 200  # more than the decoder keeps (64 or 16 * frames), so it strides
    path = media.save_video(_counting_clip(n, step=1, size=4), tmp_path / "long.gif")
    ids = _frame_ids(media.load_video(path, frames=8), step=1)
    exact = np.floor((np.arange(8) + 0.5) * n / 8)
    assert (np.diff(ids) > 0).all() and np.abs(ids - exact).max() <= 2


# ---- saving ------------------------------------------------------------------------------------------------------
def test_saves_are_atomic_and_create_folders(tmp_path, image, tone, clip):
    folder = tmp_path / "a" / "b"
    paths = [media.save_image(image, folder / "x.png"), media.save_audio(tone, folder / "x.wav", SAMPLE_RATE),
             media.save_video(clip, folder / "x.mp4"), media.save_video(clip, folder / "x.gif")]
    assert all(isinstance(p, Path) and p.is_file() for p in paths)
    assert sorted(p.name for p in folder.iterdir()) == ["x.gif", "x.mp4", "x.png", "x.wav"]  # no temp files left
    before = (folder / "x.png").read_bytes()
    for save, bad in [(media.save_image, np.zeros((8, 8, 5))), (media.save_image, np.full((8, 8, 3), np.nan))]:
        with pytest.raises(MediaError):
            save(bad, folder / "x.png")
    assert (folder / "x.png").read_bytes() == before  # a failed save leaves the old file alone
    media.save_image(image[::-1], folder / "x.png")  # overwriting works
    assert np.array_equal(media.load_image(folder / "x.png"), image[::-1])
    assert sorted(p.name for p in folder.iterdir()) == ["x.gif", "x.mp4", "x.png", "x.wav"]


@pytest.mark.parametrize("save, arr, name", [
    (media.save_image, np.zeros((8, 8, 3), np.uint8), "x.gif"),
    (media.save_audio, np.zeros(100, np.float32), "x.png"),
    (media.save_video, np.zeros((2, 8, 8, 3), np.uint8), "x.wav"),
])
def test_save_refuses_wrong_extension(tmp_path, save, arr, name):
    kw = RATE if save is media.save_audio else {}
    with pytest.raises(MediaError, match="cannot save") as e:
        save(arr, tmp_path / name, **kw)
    assert name in str(e.value) and not list(tmp_path.iterdir())


def test_save_audio_clips_and_refuses_bad_input(tmp_path):
    loud = np.r_[np.full(100, 3.0), np.full(100, -3.0)].astype(np.float32)
    out = media.load_audio(media.save_audio(loud, tmp_path / "loud.wav", SAMPLE_RATE), SAMPLE_RATE)
    assert np.abs(out).max() <= 1.0 and out[0] > 0.99
    with pytest.raises(MediaError, match="NaN"):
        media.save_audio(np.full(10, np.nan), tmp_path / "nan.wav", SAMPLE_RATE)
    with pytest.raises(MediaError, match="sample_rate"):
        media.save_audio(loud, tmp_path / "x.wav", 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loud.wav"]
