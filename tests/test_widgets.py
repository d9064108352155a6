"""The demo's widgets without a trained model: uploads from ipywidgets 7 and 8, Enter submits, answers marked ✓ / ✗.

A stand-in assistant answers every request with a fixed meta-response, so these tests need no checkpoint; the demo
on a real one is in test_assistant.py.
"""

import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from modaverse_lite import meta, widgets, world
from modaverse_lite.assistant import TINY_CAVEAT, Reply
from modaverse_lite.errors import MediaError


class FakeAssistant:
    """Answers ``Modality: [IMAGE] Prompt: a red circle`` to everything, and records what it was asked."""

    def __init__(self, out_dir: Path, answer: str = "Modality: [IMAGE] Prompt: a red circle", caveats=()):
        self.out_dir, self.answer, self.caveats = out_dir, answer, tuple(caveats)
        self.asked: list[tuple[str, dict]] = []

    def __call__(self, instruction, seed=0, **given):
        self.asked.append((instruction, given))
        return Reply(instruction, self.answer, meta.parse(self.answer), [], 0.01, next(iter(given), None),
                     self.caveats)


PNG = b"\x89PNG\r\n\x1a\n" + b"rest of a picture"


def test_uploaded_file_reads_ipywidgets_8_and_7():
    now = datetime.datetime.now(datetime.timezone.utc)
    eight = ({"name": "cat.png", "type": "image/png", "size": len(PNG), "content": memoryview(PNG),
              "last_modified": now},)
    seven = {"cat.png": {"metadata": {"name": "cat.png", "type": "image/png", "size": len(PNG),
                                      "lastModified": 1700000000000}, "content": PNG}}
    assert widgets.uploaded_file(eight) == ("cat.png", PNG)
    assert widgets.uploaded_file(seven) == ("cat.png", PNG)
    for nothing in ((), {}, None):
        assert widgets.uploaded_file(nothing) is None
    with pytest.raises(MediaError, match="no content"):
        widgets.uploaded_file({"cat.png": {"metadata": {"name": "cat.png"}}})
    with pytest.raises(MediaError, match="FileUpload"):
        widgets.uploaded_file("cat.png")


@pytest.mark.parametrize("version", [7, 8])
def test_the_demo_saves_an_upload_of_either_ipywidgets_version(tmp_path, version):
    demo = widgets.demo(FakeAssistant(tmp_path))
    if version == 8:
        value = ({"name": "../my photo.png", "type": "image/png", "size": len(PNG), "content": memoryview(PNG)},)
    else:
        value = {"../my photo.png": {"metadata": {"name": "../my photo.png", "type": "image/png"}, "content": PNG}}
    demo.upload = SimpleNamespace(value=value)  # the installed FileUpload only takes its own version's shape
    given = demo.medium()
    assert list(given) == ["image"] and given["image"] == tmp_path / "uploads" / "my_photo.png"
    assert given["image"].read_bytes() == PNG


def test_the_example_dropdown_starts_on_its_first_entry_and_means_no_medium(tmp_path):
    assistant = FakeAssistant(tmp_path)
    demo = widgets.demo(assistant)
    assert demo.example.index == 0 and demo.example.label == "(no medium)"
    assert demo.medium() == {}
    demo.example.value = ("image", "a red circle")
    assert list(demo.medium()) == ["image"] and demo.medium()["image"].shape == (world.IMAGE_SIZE,) * 2 + (3,)


def test_enter_in_the_instruction_box_asks_and_a_click_right_after_does_not_ask_twice(tmp_path):
    assistant = FakeAssistant(tmp_path)
    demo = widgets.demo(assistant)
    assert demo.instruction.continuous_update is False  # the value changes on Enter, not on every key
    demo.instruction.value = "Draw a blue square."  # what Enter (or leaving the box) sends
    assert [a for a, _ in assistant.asked] == ["Draw a blue square."] and demo.last.instruction == "Draw a blue square."
    demo.button.click()  # the click that left the box: already asked
    assert len(assistant.asked) == 1
    demo.button.click()  # a second, deliberate click asks again
    assert len(assistant.asked) == 2


def test_the_demo_says_what_the_tiny_model_cannot_know(tmp_path):
    demo = widgets.demo(FakeAssistant(tmp_path, caveats=[TINY_CAVEAT]))
    demo.button.click()
    assert "only the synthetic world" in demo.status.value and demo.error is None


def test_reply_rows_mark_each_answer_against_its_target(tmp_path):
    assistant = FakeAssistant(tmp_path)
    replies = [assistant("Draw a red circle."), assistant("Draw a red square."), assistant("Play a tone.")]
    rows = widgets.reply_rows(replies, targets=[("image", "a red circle"), ("image", "a red square"), None])
    assert [(r["routing"], r["exact"]) for r in rows] == [("✓", "✓"), ("✓", "✗"), ("–", "–")]
    assert rows[0]["target"] == "Modality: [IMAGE] Prompt: a red circle" and rows[2]["target"] == "–"
    wrong_modality = widgets.reply_rows(replies[:1], targets=[("audio", "a high sine tone")])[0]
    assert (wrong_modality["routing"], wrong_modality["exact"]) == ("✗", "✗")
    assert "target" not in widgets.reply_rows(replies)[0]  # no targets: no marks
    assert widgets.reply_table(replies, targets=[("image", "a red circle")] * 3).count("✓") == 6
    with pytest.raises(ValueError, match="targets"):
        widgets.reply_rows(replies, targets=[None])
