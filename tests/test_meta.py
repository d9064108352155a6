"""The meta-response grammar: canonical form, each malformed case, and a fuzz of random and mutated text."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modaverse_lite import meta
from modaverse_lite.meta import MetaResponse, Segment, format_meta, format_segments, parse, prompt_problem


# ---- format ---------------------------------------------------------------------------------------------------
def test_format_meta_is_exactly_the_canonical_line():
    assert format_meta("image", "a red circle") == "Modality: [IMAGE] Prompt: a red circle"
    assert format_meta("AUDIO", "  a low sine tone ") == "Modality: [AUDIO] Prompt: a low sine tone"


def test_format_segments_joins_lines():
    segs = [Segment("text", "Here you are."), Segment("video", "a blue square moving up")]
    text = format_segments(segs)
    assert text.splitlines() == ["Modality: [TEXT] Prompt: Here you are.",
                                 "Modality: [VIDEO] Prompt: a blue square moving up"]
    assert format_segments([("image", "a red circle")]) == format_meta("image", "a red circle")


@pytest.mark.parametrize("modality, prompt", [
    ("picture", "a red circle"),  # unknown modality
    ("image", "   "),  # empty prompt
    ("image", "a red\ncircle"),  # a media prompt is one line
    ("image", "a red circle Prompt: x"),  # a marker inside
    ("audio", "Modality: [IMAGE] x"),
    ("video", "a [IMAGE] square"),
])
def test_format_rejects_what_parse_could_not_read_back(modality, prompt):
    with pytest.raises(ValueError):
        format_meta(modality, prompt)


def test_prompt_problem():
    assert prompt_problem("image", "a red circle") is None
    assert prompt_problem("text", "two\nlines") is None  # a text answer may span lines
    assert "line break" in prompt_problem("image", "two\nlines")
    assert "empty" in prompt_problem("audio", "")
    assert "Prompt:" in prompt_problem("text", "my Prompt: x")
    assert prompt_problem("image", "multimodality: fine") is None  # not a marker: it does not start a word


# ---- parse: the canonical and tolerated forms -------------------------------------------------------------------
def test_parse_canonical_single_and_multi():
    r = parse("Modality: [IMAGE] Prompt: a red circle")
    assert r.ok and r.notes == ()
    assert r.segments == (Segment("image", "a red circle"),)
    assert (r.modality, r.prompt) == ("image", "a red circle")
    text = ("Modality: [TEXT] Prompt: Sure, here they are.\nModality: [IMAGE] Prompt: a red circle\n"
            "Modality: [AUDIO] Prompt: a high sine tone\nModality: [VIDEO] Prompt: a blue square moving up")
    r = parse(text)
    assert r.ok and r.raw == text
    assert [s.modality for s in r.segments] == ["text", "image", "audio", "video"]
    assert r.segments[3].prompt == "a blue square moving up"


def test_whitespace_is_tolerated_silently():
    for text in ["Modality:[IMAGE]Prompt:a red circle", "  Modality :  [ IMAGE ]   Prompt :   a red circle  \n",
                 "Modality:\n[IMAGE]\nPrompt:\n a red circle"]:
        r = parse(text)
        assert r.ok, r.notes
        assert r.segments == (Segment("image", "a red circle"),)
    r = parse("Modality: [IMAGE] Prompt: a red circle Modality: [AUDIO] Prompt: a low sine tone")
    assert r.ok and r.segments == (Segment("image", "a red circle"), Segment("audio", "a low sine tone"))


def test_case_is_tolerated_with_a_note():
    r = parse("modality: [image] prompt: a red circle")
    assert r.segments == (Segment("image", "a red circle"),)
    assert not r.ok and "case" in r.notes[0]
    r = parse("MODALITY: [Video] PROMPT: a red circle moving left")
    assert r.modality == "video" and not r.ok


def test_text_segment_may_span_lines():
    r = parse("Modality: [TEXT] Prompt: line one\nline two\nModality: [AUDIO] Prompt: a low sine tone")
    assert r.ok
    assert r.segments == (Segment("text", "line one\nline two"), Segment("audio", "a low sine tone"))


# ---- parse: malformed cases, each with a well-defined result and a note ------------------------------------------
def _only_text(r: MetaResponse) -> str:
    assert len(r.segments) == 1 and r.modality == "text"
    assert not r.ok
    return r.notes[0]


def test_free_text_is_one_text_segment():
    note = _only_text(parse("  The circle is red.\nIt is large. "))
    assert parse("  The circle is red.\nIt is large. ").prompt == "The circle is red.\nIt is large."
    assert "no 'Modality:' marker" in note
    assert "empty" in _only_text(parse(""))
    assert parse("multimodality: a word").prompt == "multimodality: a word"  # not a marker


@pytest.mark.parametrize("value", [None, 42, b"Modality: [IMAGE] Prompt: x", ["Modality: [IMAGE] Prompt: x"]])
def test_non_str_input_is_a_text_answer(value):
    r = parse(value)
    note = _only_text(r)
    assert type(value).__name__ in note


def test_non_str_whose_str_fails():
    class Bad:
        def __str__(self):
            raise RuntimeError("no")

    assert parse(Bad()).segments == (Segment("text", ""),)


@pytest.mark.parametrize("text, words", [
    ("Modality: Prompt: a red circle", "missing flag"),
    ("Modality: IMAGE Prompt: a red circle", "missing flag"),
    ("Modality: [] Prompt: a red circle", "empty flag"),
    ("Modality: [PICTURE] Prompt: a red circle", "unknown flag [PICTURE]"),
    ("Modality: [IMAG Prompt: a red circle", "unclosed or garbled flag '[IMAG'"),
    ("Modality: [IMAG", "unclosed"),
    ("Modality: [[IMAGE] Prompt: a red circle", "garbled flag"),
    ("Modality: [IMAGE] a red circle", "missing 'Prompt:'"),
    ("Modality: [IMAGE]] Prompt: a red circle", "missing 'Prompt:'"),
    ("Modality: [IMAGE] Prompt:", "empty prompt"),
    ("Modality: [AUDIO] Prompt:    \n", "empty prompt"),
    ("Modality: [IMAGE] Prompt: a red Prompt: circle", "another marker 'Prompt:'"),
    ("Modality: [IMAGE] Prompt: a red circle [AUDIO]", "another marker '[AUDIO]'"),
])
def test_unreadable_segment_falls_back_to_its_raw_text(text, words):
    r = parse(text)
    note = _only_text(r)
    assert words in note
    assert r.prompt == text.strip()  # nothing the model wrote is lost


def test_repeated_modality_marker_is_dropped_with_a_note():
    r = parse("Modality: Modality: [IMAGE] Prompt: a red circle")
    assert r.segments == (Segment("image", "a red circle"),)
    assert not r.ok and "repeated" in r.notes[0]
    r = parse("Modality:")
    assert r.segments == (Segment("text", "Modality:"),) and not r.ok
    r = parse("Modality: \n Modality:   ")
    assert len(r.segments) == 1 and r.modality == "text"


def test_stuttered_prompt_marker_is_read_as_one():
    r = parse("Modality: [IMAGE] Prompt: Prompt: a red circle")
    assert r.segments == (Segment("image", "a red circle"),)
    assert not r.ok and "repeated 2 times" in r.notes[0]


def test_words_around_segments_are_kept_as_text():
    r = parse("Sure! Modality: [IMAGE] Prompt: a red circle\n</s><pad>")
    assert r.segments == (Segment("text", "Sure!"), Segment("image", "a red circle"), Segment("text", "</s><pad>"))
    assert len(r.notes) == 2 and "before" in r.notes[0] and "after" in r.notes[1]


def test_one_bad_segment_does_not_spoil_the_others():
    r = parse("Modality: [IMAGE] Prompt: a red circle\nModality: [SMELL] Prompt: roses\n"
              "Modality: [AUDIO] Prompt: a low sine tone")
    assert [s.modality for s in r.segments] == ["image", "text", "audio"]
    assert r.segments[1].prompt == "Modality: [SMELL] Prompt: roses"
    assert len(r.notes) == 1 and "SMELL" in r.notes[0]


def test_dotless_i_is_not_a_marker():
    # case folding is ASCII only: "modalıty" is just a word
    assert parse("modalıty: [IMAGE] Prompt: x").modality == "text"
    assert parse("Modality: [ımage] Prompt: x").modality == "text"


# ---- properties -------------------------------------------------------------------------------------------------
def _check_invariants(text) -> MetaResponse:
    r = parse(text)
    assert isinstance(r, MetaResponse)
    assert len(r.segments) >= 1
    for seg in r.segments:
        assert seg.modality in meta.MODALITIES
        assert isinstance(seg.prompt, str)
        if seg.modality != "text":
            assert seg.prompt.strip() == seg.prompt and seg.prompt
    assert r.ok == (not r.notes)
    return r


# prompts from an alphabet that cannot spell a marker (no ':' and no '['), so validity does not depend on meta.py
_SAFE = st.text(st.characters(exclude_characters=":[", exclude_categories=("Cs",)), min_size=1, max_size=40)
_SEGMENT = st.builds(lambda m, p: Segment(m, " ".join(p.split()) if m != "text" else p.strip()),
                     st.sampled_from(meta.MODALITIES), _SAFE).filter(lambda s: s.prompt)
_SEGMENTS = st.lists(_SEGMENT, min_size=1, max_size=4)
_MARKERS = ["Modality:", "Prompt:", "[IMAGE]", "[AUDIO]", "[VIDEO]", "[TEXT]", "[", "]", ":", "\n", " ", "[IMAG",
            "modality :", "prompt:"]


def _fast(n: int) -> settings:
    """n examples, no deadline, same inputs on every run (CI never flakes), nothing written to disk."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@_fast(2500)
@given(st.text(max_size=200))
def test_random_text_never_breaks_parse(text):
    _check_invariants(text)


@_fast(800)
@given(st.lists(st.one_of(st.sampled_from(_MARKERS), st.text(max_size=8)), max_size=20).map("".join))
def test_marker_soup_never_breaks_parse(text):
    _check_invariants(text)


_INSERTS = _MARKERS + ["x", "é", "\t", "\r\n", "\u2028", "]]", "Modality: [IMAGE]", "Prompt: Prompt:"]


def _mutations(text: str, rng, steps: int) -> list[str]:
    """``steps`` successive mutations of ``text`` (delete / insert / duplicate characters or markers), each kept."""
    out = []
    for _ in range(steps):
        op, i = rng.randrange(4), rng.randint(0, len(text))
        if op == 0:  # delete a run of characters
            text = text[:i] + text[i + rng.randint(1, 10):]
        elif op == 1:  # insert random characters
            text = text[:i] + "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(1, 3))) + text[i:]
        elif op == 2:  # duplicate a run (stuttered markers, repeated prompts)
            j = min(len(text), i + rng.randint(1, 12))
            text = text[:j] + text[i:j] + text[j:]
        else:  # insert a marker or a piece of one
            text = text[:i] + rng.choice(_INSERTS) + text[i:]
        out.append(text)
    return out


@_fast(1500)
@given(_SEGMENTS, st.randoms(use_true_random=False))
def test_mutated_meta_responses_never_break_parse(segs, rng):
    # 1500 examples x 6 successive mutations = 9000 mutated strings
    for text in _mutations(format_segments(segs), rng, steps=6):
        _check_invariants(text)


@_fast(1000)
@given(_SEGMENTS)
def test_round_trip_on_valid_segments(segs):
    text = format_segments(segs)
    r = _check_invariants(text)
    assert r.segments == tuple(segs)
    assert r.ok


@_fast(1000)
@given(st.sampled_from(meta.MODALITIES), st.text(min_size=1, max_size=60))
def test_whatever_format_accepts_parse_reads_back(modality, prompt):
    try:
        line = format_meta(modality, prompt)
    except ValueError:
        assert prompt_problem(modality, prompt) is not None
        return
    assert parse(line).segments == (Segment(modality, prompt.strip()),)
    assert parse(line).ok


@pytest.mark.parametrize("text", [
    "Modality: [" + " " * 100_000,
    "Modality: [" + " " * 50_000 + "x" + " " * 50_000,
    "Modality: [IMAGE] Prompt: " + "[ " * 50_000,
    "Modality: [IMAGE] Prompt: " + "Prompt: " * 10_000,
    "Modality: " * 20_000,
    "Modality: [IMAGE] Prompt: a red circle\n" * 5_000,
])
def test_long_adversarial_text_is_read_in_linear_time(text):
    import time

    start = time.perf_counter()
    _check_invariants(text)
    assert time.perf_counter() - start < 1.0
