"""The assistant end to end on a short-trained checkpoint, its media contract, its errors, and the widget demo."""

import datetime
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from modaverse_lite import media, meta, world
from modaverse_lite.assistant import TINY_CAVEAT, Assistant, Reply, default_checkpoint, world_example
from modaverse_lite.dispatch import Output, Registry
from modaverse_lite.errors import CheckpointError, MediaError, ModaVerseError
from modaverse_lite.generators import WorldRenderer

MULTI = meta.format_segments([("text", "Here you are."), ("image", "a red circle"), ("audio", "a high sine tone"),
                              ("video", "a blue square moving up")])


@pytest.fixture(scope="module")
def assistant(short_run, tmp_path_factory):
    return Assistant(short_run.checkpoint, out_dir=tmp_path_factory.mktemp("outputs"))


def _files(folder):
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


# ---- the assistant ---------------------------------------------------------------------------------------------
def test_a_reply_is_the_parsed_and_dispatched_meta_response(assistant):
    reply = assistant("Draw a red circle.")
    assert isinstance(reply, Reply) and reply.instruction == "Draw a red circle." and reply.medium is None
    assert isinstance(reply.meta_response, str) and reply.seconds > 0
    assert reply.parsed == meta.parse(reply.meta_response)
    assert [o.modality for o in reply.outputs] == [s.modality for s in reply.parsed.segments]
    for out, segment in zip(reply.outputs, reply.parsed.segments):
        assert isinstance(out, Output) and out.prompt == segment.prompt
        if out.modality == "text":
            assert out.text == segment.prompt and out.path is None
        else:  # a file under out_dir, or an error saying why not (a short-trained model may ask for anything)
            assert (out.path is not None and out.path.parent == assistant.out_dir) != (out.error is not None)
    json.dumps(reply.to_dict())  # plain values only
    assert reply.format().splitlines()[0] == reply.meta_response.splitlines()[0]
    assert reply.caveats == (TINY_CAVEAT,) and f"note: {TINY_CAVEAT}" in reply.format()  # it knows only the world
    assert reply.to_dict()["caveats"] == [TINY_CAVEAT]
    assert assistant("Draw a red circle.").meta_response == reply.meta_response  # greedy: deterministic


def test_every_medium_reaches_the_model_and_changes_its_input(assistant, tmp_path):
    clip = world.render("video", {"colour": "red", "shape": "circle", "direction": "up"}).data
    path = media.save_video(clip, tmp_path / "clip.gif")
    for modality, item in (("image", world_example("image", "a green square")),
                           ("audio", world_example("audio", "a low sine tone")),
                           ("video", path)):
        reply = assistant("Describe this.", **{modality: item})
        assert reply.medium == modality and reply.parsed.segments
    video = assistant.features("video", path)
    assert video.shape[:2] == (1, assistant.profile.video_frames)
    assert not torch.allclose(assistant.features("image", world_example("image", "a red circle")),
                              assistant.features("image", world_example("image", "a blue square")))


def test_audio_arrays_are_16_khz_unless_a_rate_is_given(assistant):
    wave, rate = world_example("audio", "a high square tone")
    assert rate == world.SAMPLE_RATE
    bare = assistant.features("audio", wave)
    torch.testing.assert_close(bare, assistant.features("audio", (wave, world.SAMPLE_RATE)))
    doubled = np.repeat(wave, 2)  # the same tone at 32 kHz, told as such: almost the same features
    told = assistant.features("audio", (doubled, 2 * world.SAMPLE_RATE))
    untold = assistant.features("audio", doubled)  # read as 16 kHz: an octave lower
    assert torch.cosine_similarity(told, bare).item() > torch.cosine_similarity(untold, bare).item()


def test_media_answers_are_written_as_files_of_their_kind(assistant, monkeypatch):
    monkeypatch.setattr(assistant, "meta_response", lambda *args, **kwargs: MULTI)
    before = set(_files(assistant.out_dir))
    reply = assistant("Show me everything.", seed=3)
    assert [o.modality for o in reply.outputs] == ["text", "image", "audio", "video"]
    assert reply.text == "Here you are." and all(o.ok for o in reply.outputs)
    assert set(_files(assistant.out_dir)) - before == set(reply.paths)
    image, wave, clip = (media.load(p, m, **kw) for p, m, kw in zip(
        reply.paths, ("image", "audio", "video"), ({}, {"sample_rate": world.SAMPLE_RATE}, {"frames": 8})))
    np.testing.assert_array_equal(image, world.render("image", {"colour": "red", "shape": "circle"}, seed=3).data)
    assert wave.shape == (world.SAMPLE_RATE,) and clip.shape == (8, world.IMAGE_SIZE, world.IMAGE_SIZE, 3)


def test_two_media_at_once_are_refused_naming_both(assistant):
    with pytest.raises(MediaError, match="image and audio"):
        assistant("Describe these.", image=world_example("image", "a red circle"),
                  audio=world_example("audio", "a high sine tone"))


def test_bad_media_raise_media_error_naming_the_file(assistant, tmp_path):
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    with pytest.raises(MediaError, match="broken.png"):
        assistant("Describe this image.", image=corrupt)
    with pytest.raises(MediaError, match="missing.wav"):
        assistant("Describe this sound.", audio=tmp_path / "missing.wav")
    sound = media.save_audio(np.zeros(1600, np.float32), tmp_path / "tone.wav", 16_000)
    with pytest.raises(MediaError, match="tone.wav"):
        assistant("Describe this image.", image=sound)  # a sound passed as an image
    with pytest.raises(MediaError):
        assistant("Describe this sound.", audio=(np.zeros(100, np.float32), 16_000, "extra"))
    with pytest.raises(ModaVerseError, match="instruction"):
        assistant("   ")


def test_a_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError):
        Assistant(tmp_path / "nowhere")


def test_default_checkpoint_reuses_notebook_02s_run_and_trains_only_when_missing(short_run, monkeypatch, tmp_path,
                                                                                 capsys):
    from modaverse_lite import assistant as module

    monkeypatch.setattr(module, "default_run_dir", lambda profile, seed: short_run.checkpoint.parent)
    monkeypatch.setattr(module, "align_train", lambda config: pytest.fail("trained although a checkpoint exists"))
    assert default_checkpoint("tiny", 0, steps=5) == short_run.checkpoint
    configs = []
    monkeypatch.setattr(module, "default_run_dir", lambda profile, seed: tmp_path / f"run-{seed}")
    monkeypatch.setattr(module, "default_dataset", lambda profile, seed: tmp_path / f"data-{seed}")
    monkeypatch.setattr(module, "align_train",
                        lambda config: configs.append(config) or SimpleNamespace(checkpoint=tmp_path / "made"))
    assert default_checkpoint("tiny", 3, steps=5) == tmp_path / "made"
    said = capsys.readouterr()
    assert "No checkpoint in" in said.out and "5 steps" in said.out and not said.err  # plain output in a notebook
    assert [(c.out_dir, c.seed, c.steps, c.profile.name) for c in configs] == [(str(tmp_path / "run-3"), 3, 5,
                                                                                "tiny")]


def test_world_example_reads_captions():
    np.testing.assert_array_equal(world_example("image", "a red circle", seed=2),
                                  world.render("image", {"colour": "red", "shape": "circle"}, seed=2).data)
    with pytest.raises(MediaError, match="not a world video caption"):
        world_example("video", "a red circle")


# ---- the widget demo and the display helpers ------------------------------------------------------------------
def test_demo_builds_without_blocking_and_answers_a_click(assistant):
    from modaverse_lite import widgets

    demo = widgets.demo(assistant, instruction="Draw a blue square.")
    assert "application/vnd.jupyter.widget-view+json" in demo._repr_mimebundle_()
    demo.button.click()
    assert demo.error is None and demo.last.instruction == "Draw a blue square." and demo.last.medium is None
    assert demo.last.meta_response.split("\n")[0][:20] in demo.result.value.replace("&#x27;", "'")
    demo.example.value = ("audio", "a high square tone")
    demo.instruction.value = "Describe this sound."
    demo.button.click()
    assert demo.error is None and demo.last.medium == "audio" and "audio/wav" in demo.result.value


def test_demo_uses_an_upload_and_shows_errors_instead_of_raising(assistant):
    from modaverse_lite import widgets

    demo = widgets.demo(assistant)
    now = datetime.datetime.now(datetime.timezone.utc)

    def upload(name, content):
        demo.upload.value = ({"name": name, "type": "", "size": len(content), "content": memoryview(content),
                              "last_modified": now},)

    upload("../../broken.png", b"not a png")
    demo.button.click()
    assert demo.error and "broken.png" in demo.error and "broken.png" in demo.status.value
    assert (assistant.out_dir / "uploads" / "broken.png").exists()  # kept inside out_dir, whatever its name said
    tone = world.render("audio", {"pitch": "low", "timbre": "sine"}).data
    path = media.save_audio(tone, assistant.out_dir / "tone.wav", world.SAMPLE_RATE)
    upload("tone.wav", path.read_bytes())
    demo.example.value = ("image", "a red circle")  # the upload wins over the example
    assert demo.ask() is demo.last and demo.error is None and demo.last.medium == "audio"


def test_reply_table_shows_inputs_answers_and_errors(assistant, monkeypatch):
    from modaverse_lite import widgets

    answer = MULTI + "\nModality: [IMAGE] Prompt: a tree"
    monkeypatch.setattr(assistant, "meta_response", lambda *args, **kwargs: answer)
    given = {"audio": world_example("audio", "a high sine tone")}
    reply = assistant("Show me everything.", **given)
    row = widgets.reply_rows([reply], [given])[0]
    assert row["input"].count("<audio") == 1 and row["meta-response"] == reply.meta_response
    for kind in ("data:image/png", "data:audio/wav", "data:image/gif", "<i>Here you are.</i>", "cannot draw"):
        assert kind in row["output"]
    table = widgets.reply_table([reply, reply], [given, None])
    assert table.count("<tr>") == 3 and "&lt;" not in row["output"]


def test_generator_table_draws_a_reply_with_each_registry(assistant, monkeypatch, tmp_path):
    from modaverse_lite import widgets

    monkeypatch.setattr(assistant, "meta_response", lambda *args, **kwargs: "Modality: [IMAGE] Prompt: a red circle")
    reply = assistant("Draw a red circle.")
    empty = Registry()
    world_only = Registry()
    world_only.register("image", lambda: WorldRenderer("image"))
    table = widgets.generator_table([reply], {"world": world_only, "none": empty}, tmp_path)
    assert table.count("data:image/png") == 1 and "no generator registered" in table
