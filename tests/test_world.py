import numpy as np
import pytest

from modaverse_lite import world


@pytest.mark.parametrize("modality", world.MODALITIES)
def test_caption_and_parse_are_inverses(modality):
    for combo in world.combinations(modality):
        attrs = dict(zip(world.ATTRIBUTES[modality], combo))
        assert world.parse_caption(world.caption(modality, attrs)) == (modality, attrs)


def test_captions_use_the_right_article_and_parse_tolerates_either():
    assert world.caption("image", {"colour": "orange", "shape": "circle"}) == "an orange circle"
    assert world.parse_caption("A orange circle.") == ("image", {"colour": "orange", "shape": "circle"})
    assert world.parse_caption("a cat on a mat") is None


@pytest.mark.parametrize("modality", world.MODALITIES)
def test_generate_is_seeded_and_split(modality):
    a, b = world.generate(modality, 20, seed=3), world.generate(modality, 20, seed=3)
    assert all(np.array_equal(x.data, y.data) and x.caption == y.caption for x, y in zip(a, b))
    assert not np.array_equal(a[0].data, world.generate(modality, 20, seed=4)[0].data)
    seen = world.generate(modality, 60, seed=0, split="seen")
    unseen = world.generate(modality, 30, seed=0, split="unseen")
    key = lambda s: tuple(s.attributes[k] for k in world.ATTRIBUTES[modality])  # noqa: E731
    assert all(key(s) not in world.UNSEEN[modality] for s in seen)
    assert all(key(s) in world.UNSEEN[modality] for s in unseen)


def test_unseen_combinations_hold_out_no_single_value():
    for modality in world.MODALITIES:
        seen = world.combinations(modality, "seen")
        for i, name in enumerate(world.ATTRIBUTES[modality]):
            assert {c[i] for c in seen} == set(world.VALUES[name]), f"{modality}.{name} lost a value"


def test_media_shapes_and_ranges():
    image = world.render("image", {"colour": "red", "shape": "circle"})
    assert image.data.shape == (world.IMAGE_SIZE, world.IMAGE_SIZE, 3) and image.data.dtype == np.uint8
    tone = world.render("audio", {"pitch": "high", "timbre": "square"})
    assert tone.data.shape == (int(world.SAMPLE_RATE * world.AUDIO_SECONDS),) and np.abs(tone.data).max() <= 1
    clip = world.render("video", {"colour": "blue", "shape": "triangle", "direction": "left"})
    assert clip.data.shape[0] == world.VIDEO_FRAMES and len(clip.frame_captions) == world.VIDEO_FRAMES


@pytest.mark.parametrize("direction", world.DIRECTIONS)
def test_video_moves_in_its_direction(direction):
    clip = world.render("video", {"colour": "red", "shape": "square", "direction": direction}, seed=1)
    centres = []
    for frame in clip.data:
        ys, xs = np.nonzero((frame[..., 0] > 150) & (frame[..., 1] < 100))
        centres.append((xs.mean(), ys.mean()))
    (x0, y0), (x1, y1) = centres[0], centres[-1]
    dx, dy = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[direction]
    assert (x1 - x0) * dx + (y1 - y0) * dy > 20  # travels 30–40 px that way
    assert abs((x1 - x0) * dy) + abs((y1 - y0) * dx) < 2  # and not sideways


def test_pitch_is_the_dominant_frequency():
    for pitch, hz in world.PITCHES.items():
        tone = world.render("audio", {"pitch": pitch, "timbre": "sine"}).data
        spectrum = np.abs(np.fft.rfft(tone))
        peak = np.argmax(spectrum) * world.SAMPLE_RATE / len(tone)
        assert abs(peak - hz) / hz < 0.05


def test_translate_follows_the_world_rules():
    assert world.translate("image", {"colour": "red", "shape": "circle"}, "audio") == \
        {"pitch": "high", "timbre": "sine"}
    assert world.translate("audio", {"pitch": "low", "timbre": "square"}, "image") == \
        {"colour": "blue", "shape": "square"}
    assert world.translate("image", {"colour": "red", "shape": "circle"}, "video", "up")["direction"] == "up"
    with pytest.raises(ValueError, match="direction"):
        world.translate("image", {"colour": "red", "shape": "circle"}, "video")


def test_bad_attributes_are_named():
    with pytest.raises(ValueError, match="colour='pink'"):
        world.render("image", {"colour": "pink", "shape": "circle"})
    with pytest.raises(ValueError, match="unknown modality"):
        world.render("smell", {})
