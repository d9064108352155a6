"""The held-out splits stay held out: no held-out phrasing and no unseen combination reaches training or the
tiny LLM's pretraining text."""

import re

import pytest

from modaverse_lite import instructions, world
from modaverse_lite.instructions import HELD_OUT, PAIRS, QUESTIONS, TEMPLATES, train_templates
from modaverse_lite.zoo import pretrain, text


def _norm(sentence: str) -> str:
    """A phrasing without case, punctuation or politeness: "Please draw {caption}." ~ "draw {caption}"."""
    words = re.sub(r"[^\w{} ]", " ", sentence.lower()).split()
    return " ".join(w for w in words if w != "please")


def _unseen_pattern(modality: str, caption: str) -> re.Pattern:
    # an unseen image combination may still be the object of a seen video ("a red triangle moving left"):
    # per modality, the caption is the whole description
    tail = r"(?! moving)" if modality == "image" else ""
    return re.compile(rf"(?<![\w-]){re.escape(caption)}\b{tail}")


UNSEEN = [(m, world.caption(m, dict(zip(world.ATTRIBUTES[m], c)))) for m in world.MODALITIES
          for c in world.combinations(m, "unseen")]


@pytest.fixture(scope="module")
def pretraining_text() -> list[str]:
    r = pretrain.RECIPES["llm"]
    return text.world_corpus() + text.copy_corpus(r["copies"], r["seed"])


def test_every_pair_has_many_training_phrasings_and_its_held_out_ones():
    for pair in PAIRS:
        assert HELD_OUT[pair], pair
        assert len(train_templates(pair)) >= 40, (pair, len(train_templates(pair)))
        assert set(HELD_OUT[pair]) <= set(TEMPLATES[pair])
        assert len(TEMPLATES[pair]) == len(set(TEMPLATES[pair])), f"{pair}: a phrasing is listed twice"
    for q in QUESTIONS:  # text->text: the last phrasing of each question kind is its held-out one
        assert q.phrasings[-1] in HELD_OUT["text->text"] and len(q.phrasings) >= 6


def test_no_held_out_phrasing_is_a_training_phrasing_even_reworded_politely():
    for pair in PAIRS:
        train = {_norm(t) for t in train_templates(pair)}
        for held in HELD_OUT[pair]:
            assert _norm(held) not in train, (pair, held)
    train_all = {_norm(t) for pair in PAIRS for t in train_templates(pair)}
    leaked = [h for pair in PAIRS for h in HELD_OUT[pair] if _norm(h) in train_all]
    assert not leaked, f"held-out phrasings that train another pair: {leaked}"


_STOP = set("a an the this that of to for me you i it its is be please could can would like will in into on at "
            "with and my your".split())


def _content(sentence: str) -> set[str]:
    return {w for w in re.sub(r"[^\w{} ]", " ", sentence.lower()).split() if w not in _STOP}


def _overlap(a: str, b: str) -> float:
    ca, cb = _content(a), _content(b)
    return len(ca & cb) / len(ca | cb)


def test_no_training_phrasing_is_a_held_out_one_with_other_small_words():
    # "Can you illustrate {caption}?" is "Please illustrate {caption}." asked again: the generated phrasings may
    # share words with a held-out one (any paraphraser's would), never most of its content words
    for held_pair in PAIRS:
        for held in HELD_OUT[held_pair]:
            for pair in PAIRS:
                close = [t for t in train_templates(pair) if _overlap(held, t) >= 0.8]
                assert not close, f"{held!r} ({held_pair}) is nearly {close[:3]} ({pair})"
    assert _overlap("Please illustrate {caption}.", "Can you illustrate {caption}?") == 1.0


def test_the_llms_pretraining_text_holds_no_held_out_phrasing(pretraining_text):
    lines = {_norm(line) for line in pretraining_text}
    for pair in PAIRS:
        for held in HELD_OUT[pair]:
            assert _norm(held) not in lines, (pair, held)
            filled = [_norm(held.format(caption=c, direction=d)) for _, c in UNSEEN[:3] for d in world.DIRECTIONS]
            assert not lines & set(filled), (pair, held)


def test_the_llms_pretraining_text_holds_no_unseen_combination(pretraining_text):
    assert len(UNSEEN) == sum(len(c) for c in world.UNSEEN.values())
    for modality, caption in UNSEEN:
        pattern = _unseen_pattern(modality, caption)
        hits = [line for line in pretraining_text if pattern.search(line)]
        assert not hits, f"{modality} {caption!r} is in the LLM's pretraining text: {hits[:3]}"


def test_the_leak_check_would_catch_a_leak():
    modality, caption = UNSEEN[0]
    assert _unseen_pattern(modality, caption).search(f"this is {caption}.")
    assert not _unseen_pattern("image", "a red triangle").search("a red triangle moving left")
    assert _norm("Please illustrate {caption}.") == _norm("illustrate {caption}")


def test_the_encoders_tokenizers_still_know_every_combination():
    # CLIP and CLAP stand for web-pretrained encoders: they have read every colour of every shape
    assert all(c in text.caption_corpus() for _, c in UNSEEN)
    assert set(text.caption_corpus("seen")) < set(text.caption_corpus())


def test_generated_phrasings_ask_for_the_right_thing():
    # a text->X phrasing names its caption, an X->video one its direction, an X->text one neither
    for pair in PAIRS:
        inputs, target = pair.split("->")
        for t in train_templates(pair):
            if pair == "text->text" or inputs == "text":
                assert "{caption}" in t, (pair, t)
            elif target == "video":
                assert "{direction}" in t, (pair, t)
            else:
                assert "{" not in t, (pair, t)
    assert instructions.RECIPE_VERSION >= 3  # the phrasings changed: a new default dataset folder
