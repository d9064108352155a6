"""The dispatcher: routing, files on disk, no overwrite, errors per segment, lazy loading, real diffusers pipelines."""

import json
import re
import shutil

import numpy as np
import pytest

from modaverse_lite import dispatch, media, world, zoo
from modaverse_lite.bench import bench_dispatch
from modaverse_lite.dispatch import Dispatcher, Output, Registry, registry_for
from modaverse_lite.errors import CheckpointError, GeneratorError
from modaverse_lite.generators import DiffusersGenerator, Generator, WorldRenderer, check_checkpoint
from modaverse_lite.meta import format_segments, parse
from modaverse_lite.profiles import TINY, Checkpoints

MULTI = format_segments([("text", "Here you are."), ("image", "a red circle"), ("audio", "a high sine tone"),
                         ("video", "a blue square moving up")])


def _files(folder):
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


class Counting(Generator):
    """A world renderer that counts its loads and calls."""

    def __init__(self, modality):
        super().__init__(modality, f"counting:{modality}")
        self.calls = 0
        self.inner = WorldRenderer(modality)
        self.sample_rate = self.inner.sample_rate

    def _load(self):
        self.inner.load()

    def _generate(self, prompt, seed):
        self.calls += 1
        return self.inner.generate(prompt, seed)


# ---- generators -------------------------------------------------------------------------------------------------
def test_world_renderer_draws_exactly_the_prompt():
    image = WorldRenderer("image").generate("a red circle", seed=3)
    np.testing.assert_array_equal(image, world.render("image", {"colour": "red", "shape": "circle"}, 3).data)
    audio_gen = WorldRenderer("audio")
    audio = audio_gen.generate("A high sine tone.", seed=1)  # world prompts are read case- and dot-insensitively
    assert audio.dtype == np.float32 and audio.shape == (world.SAMPLE_RATE,)
    assert audio_gen.sample_rate == world.SAMPLE_RATE
    video = WorldRenderer("video").generate("a blue square moving up", seed=0)
    assert video.shape == (world.VIDEO_FRAMES, world.IMAGE_SIZE, world.IMAGE_SIZE, 3) and video.dtype == np.uint8


def test_world_renderer_rejects_prompts_outside_the_world():
    with pytest.raises(GeneratorError) as err:
        WorldRenderer("image").generate("a photograph of a cat", seed=0)
    assert "'a photograph of a cat'" in str(err.value) and "'a red circle'" in str(err.value)
    with pytest.raises(GeneratorError) as err:  # a world prompt, but of another modality
        WorldRenderer("image").generate("a low sine tone", seed=0)
    assert "audio" in str(err.value) and "'a low sine tone'" in str(err.value)
    with pytest.raises(GeneratorError):
        WorldRenderer("text")


def test_generator_output_is_checked():
    class Broken(Generator):
        def _generate(self, prompt, seed):
            return np.zeros((4, 4), np.float64)

    with pytest.raises(GeneratorError, match="broken.*must be"):
        Broken("image", "broken").generate("x")


def test_a_failed_load_is_remembered_not_retried(tmp_path):
    class Flaky(Generator):
        attempts = 0

        def _load(self):
            self.attempts += 1
            if self.attempts == 1:  # would succeed on a retry: it must not be retried
                raise CheckpointError(f"no checkpoint for {self.name!r} (attempt {self.attempts})")

        def _generate(self, prompt, seed):
            return np.zeros((4, 4, 3), np.uint8)

    gen = Flaky("image", "flaky")
    with pytest.raises(CheckpointError) as first:
        gen.generate("a red circle")
    for call in (gen.generate, lambda prompt: gen.load()):
        with pytest.raises(CheckpointError) as again:
            call("a red circle")
        assert type(again.value) is type(first.value) and str(again.value) == str(first.value)
        assert "attempt 1" in str(again.value)
    assert gen.attempts == 1 and gen.loads == 0 and gen.load_error is first.value

    registry = Registry()  # through the dispatcher: each segment reports the same error, the load is tried once
    registry.register("image", gen)
    outputs = Dispatcher(registry, tmp_path)("Modality: [IMAGE] Prompt: a\nModality: [IMAGE] Prompt: b")
    assert [o.error for o in outputs] == [str(first.value)] * 2 and gen.attempts == 1


# ---- registry ---------------------------------------------------------------------------------------------------
def test_registry_only_knows_registered_keys():
    registry = Registry()
    registry.register("image", lambda: WorldRenderer("image"))
    assert "image" in registry and registry.modalities == ["image"]
    for key in ["audio", "smell", "text", "../../etc/passwd", "os.system", None]:
        with pytest.raises(GeneratorError, match="no generator registered"):
            registry.get(key)
    for key in ["text", "smell", "modaverse_lite.world.render"]:
        with pytest.raises(GeneratorError):
            registry.register(key, lambda: WorldRenderer("image"))
    registry.register("audio", lambda: WorldRenderer("image"))  # a factory that makes the wrong kind
    with pytest.raises(GeneratorError, match="made a generator for 'image'"):
        registry.get("audio")


def test_generators_are_made_and_loaded_once(tmp_path):
    made = []

    def factory():
        made.append(Counting("image"))
        return made[-1]

    registry = Registry()
    registry.register("image", factory)
    assert made == []  # registering makes nothing
    dispatcher = Dispatcher(registry, tmp_path)
    for seed in range(3):
        dispatcher("Modality: [IMAGE] Prompt: a red circle\nModality: [IMAGE] Prompt: a blue square", seed=seed)
    assert len(made) == 1
    assert made[0].loads == 1 and made[0].calls == 6


def test_registry_for_builds_nothing_until_used(monkeypatch):
    resolved = []
    monkeypatch.setattr(zoo, "checkpoint", lambda profile, role: resolved.append(role) or "/nonexistent")
    profile = TINY.with_(checkpoints=Checkpoints("zoo:clip", "zoo:clap", "zoo:llm", "zoo:sd", "world", "world"))
    registry = registry_for(profile)
    assert registry.modalities == ["audio", "image", "video"] and resolved == []
    assert isinstance(registry.get("audio"), WorldRenderer)
    gen = registry.get("image")
    assert isinstance(gen, DiffusersGenerator) and resolved == ["text_to_image"]
    assert (gen.steps, gen.device, gen.dtype) == (profile.generator_steps, profile.device, profile.dtype)
    assert gen.loads == 0  # resolved, not loaded


# ---- dispatcher -------------------------------------------------------------------------------------------------
def test_routing_writes_loadable_files(tmp_path):
    outputs = Dispatcher(registry_for("tiny"), tmp_path)(MULTI, seed=5)
    assert [o.modality for o in outputs] == ["text", "image", "audio", "video"]
    assert all(isinstance(o, Output) and o.ok and o.seconds >= 0 for o in outputs)
    text, image, audio, video = outputs
    assert (text.text, text.path, text.generator) == ("Here you are.", None, "text")
    assert [o.path.suffix for o in outputs[1:]] == [".png", ".wav", ".mp4"]
    assert all(o.path.parent == tmp_path and o.path.name.startswith(o.modality + "-") for o in outputs[1:])
    assert _files(tmp_path) == sorted(o.path for o in outputs[1:])  # no temporary files left behind
    assert image.generator == "world:image" and image.prompt == "a red circle"

    truth = {m: world.render(m, world.parse_caption(o.prompt)[1], seed=5).data
             for m, o in [("image", image), ("audio", audio), ("video", video)]}
    np.testing.assert_array_equal(media.load_image(image.path), truth["image"])  # PNG is lossless
    wave = media.load_audio(audio.path, world.SAMPLE_RATE)
    assert wave.shape == truth["audio"].shape and np.abs(wave - truth["audio"]).max() < 1e-3  # 16-bit PCM
    clip = media.load_video(video.path, frames=world.VIDEO_FRAMES)
    assert clip.shape == truth["video"].shape
    assert np.abs(clip.astype(float) - truth["video"]).mean() < 8  # H.264 is lossy, but close


def test_text_passes_through_without_files(tmp_path):
    outputs = Dispatcher(registry_for("tiny"), tmp_path / "out")("Just words, no markers.")
    assert len(outputs) == 1 and outputs[0].text == "Just words, no markers." and outputs[0].path is None
    assert not (tmp_path / "out").exists()
    dispatcher = Dispatcher(registry_for("tiny"), tmp_path)
    parsed = parse("Modality: [TEXT] Prompt: two\nlines")
    assert dispatcher(parsed)[0].text == "two\nlines" and dispatcher.last is parsed


def test_many_calls_never_overwrite(tmp_path):
    (tmp_path / "keep.png").write_bytes(b"not mine")
    a, b = Dispatcher(registry_for("tiny"), tmp_path), Dispatcher(registry_for("tiny"), tmp_path)
    paths = []
    for i in range(30):
        paths += [o.path for o in (a if i % 2 else b)("Modality: [IMAGE] Prompt: a red circle", seed=i)]
    assert len(set(paths)) == 30 and len(_files(tmp_path)) == 31
    assert (tmp_path / "keep.png").read_bytes() == b"not mine"
    for i, path in enumerate(paths):  # every file still holds what its own call drew
        np.testing.assert_array_equal(media.load_image(path), world.render(
            "image", {"colour": "red", "shape": "circle"}, seed=i).data)


def test_a_name_already_taken_is_skipped(tmp_path, monkeypatch):
    class SameUuid:
        hex = "0" * 32

    monkeypatch.setattr(dispatch.uuid, "uuid4", lambda: SameUuid())
    monkeypatch.setattr(dispatch.time, "strftime", lambda fmt: "20240101-000000")
    first = Dispatcher(registry_for("tiny"), tmp_path)("Modality: [IMAGE] Prompt: a red circle")[0].path
    before = first.read_bytes()
    second = Dispatcher(registry_for("tiny"), tmp_path)("Modality: [IMAGE] Prompt: a blue square")[0].path
    assert first.name == "image-20240101-000000-0000-00000000.png"  # the second dispatcher wanted this name too
    assert second != first and second.exists() and first.read_bytes() == before


def test_one_failing_segment_keeps_the_others(tmp_path):
    registry = Registry()
    registry.register("image", lambda: WorldRenderer("image"))  # no audio, no video generator
    response = ("Modality: [IMAGE] Prompt: a photograph of a cat\nModality: [AUDIO] Prompt: a low sine tone\n"
                "Modality: [IMAGE] Prompt: a green diamond\nModality: [SMELL] Prompt: roses")
    outputs = Dispatcher(registry, tmp_path)(response)
    cat, audio, diamond, smell = outputs
    assert cat.path is None and not cat.ok and "a photograph of a cat" in cat.error
    assert cat.generator == "world:image"
    assert audio.path is None and "no generator registered for 'audio'" in audio.error and audio.generator == ""
    assert diamond.ok and diamond.path.exists()
    assert smell.modality == "text" and "SMELL" in smell.text  # unreadable segment: its words come back as text
    assert _files(tmp_path) == [diamond.path]


def test_bench_dispatch_overhead_is_under_a_millisecond():
    result = bench_dispatch(n=300)
    assert result["n"] == 300 and result["parse_ms"] > 0 and result["route_ms"] > 0
    assert result["per_request_ms"] < 1.0 and result["ok"]
    with pytest.raises(ValueError):
        bench_dispatch(0)


# ---- diffusers ----------------------------------------------------------------------------------------------------
def test_missing_or_incomplete_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="nowhere"):
        check_checkpoint(str(tmp_path / "nowhere"))
    check_checkpoint("stabilityai/sd-turbo")  # a hub id is left to from_pretrained
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="model_index.json"):
        check_checkpoint(str(tmp_path / "empty"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model_index.json").write_text(json.dumps(
        {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
         "safety_checker": [None, None]}))
    with pytest.raises(CheckpointError, match=r"incomplete.*unet"):
        check_checkpoint(str(tmp_path / "half"))
    gen = DiffusersGenerator("image", tmp_path / "nowhere", steps=2)  # lazy: constructing loads nothing
    with pytest.raises(CheckpointError, match="nowhere"):
        gen.generate("a red circle")
    registry = Registry()
    registry.register("image", gen)
    (out,) = Dispatcher(registry, tmp_path / "out")("Modality: [IMAGE] Prompt: a red circle")
    assert out.path is None and "nowhere" in out.error


@pytest.fixture(scope="module")
def tiny_pipelines(tmp_path_factory):
    from modaverse_lite.zoo import diffusers as tiny_diffusers

    root = tmp_path_factory.mktemp("pipelines")
    return {"image": tiny_diffusers.build_text_to_image(root / "sd"),
            "audio": tiny_diffusers.build_text_to_audio(root / "audioldm2"),
            "video": tiny_diffusers.build_text_to_video(root / "text2video")}


def test_tiny_diffusers_pipelines_through_the_dispatcher(tiny_pipelines, tmp_path):
    profile = TINY.with_(generator_steps=2, checkpoints=Checkpoints(
        "zoo:clip", "zoo:clap", "zoo:llm", *(str(tiny_pipelines[m]) for m in ("image", "audio", "video"))))
    registry = registry_for(profile)
    outputs = Dispatcher(registry, tmp_path)(MULTI, seed=0)
    assert all(o.ok for o in outputs), [o.error for o in outputs]
    text, image, audio, video = outputs
    assert text.text == "Here you are."
    assert all(isinstance(registry.get(m), DiffusersGenerator) for m in ("image", "audio", "video"))
    assert image.generator == f"diffusers:{tiny_pipelines['image']}"

    picture = media.load_image(image.path)
    assert picture.shape == (64, 64, 3) and picture.dtype == np.uint8
    assert registry.get("audio").sample_rate == 16_000
    wave = media.load_audio(audio.path, 16_000)
    assert wave.ndim == 1 and len(wave) > 0 and np.isfinite(wave).all()
    clip = media.load_video(video.path, frames=profile.video_frames)
    assert clip.shape == (profile.video_frames, 64, 64, 3)

    # same seed, same image; the pipeline was loaded once for all of it
    gen = registry.get("image")
    np.testing.assert_array_equal(gen.generate("a red circle", seed=0), picture)
    assert [registry.get(m).loads for m in ("image", "audio", "video")] == [1, 1, 1]


def test_incomplete_pipeline_folder_is_a_checkpoint_error(tiny_pipelines, tmp_path):
    broken = tmp_path / "sd"
    shutil.copytree(tiny_pipelines["image"], broken)
    for weights in (broken / "unet").glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(CheckpointError, match=re.escape(str(broken))):
        DiffusersGenerator("image", broken, steps=2).load()
    shutil.rmtree(broken / "unet")
    with pytest.raises(CheckpointError, match="unet"):
        DiffusersGenerator("image", broken, steps=2).load()


def test_loading_a_pipeline_is_quiet_and_puts_the_libraries_settings_back():
    import logging

    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from modaverse_lite.generators import _quiet_loading

    libraries = (diffusers_logging, transformers_logging)
    fallback = logging.getLogger("transformers.utils.import_utils")
    bars, level = [lib.is_progress_bar_enabled() for lib in libraries], fallback.level
    with _quiet_loading():
        assert not any(lib.is_progress_bar_enabled() for lib in libraries)
        assert fallback.getEffectiveLevel() >= logging.ERROR  # no "requires torchvision; falling back" warning
    assert [lib.is_progress_bar_enabled() for lib in libraries] == bars and fallback.level == level
