"""The zoo's text: the world's corpora, and one BPE trainer that makes every tokenizer of the zoo from them.

No tokenizer can be downloaded either, so each is trained here: the encoders' and pipelines' on
``caption_corpus()`` (every sentence of the synthetic world: captions, frame captions, meta-responses), the LLM's
on ``world_corpus()`` (those and the training phrasings of the instructions).

* ``train_tokenizer`` — the byte-level BPE tokenizer that CLIP, CLAP and the LLM share (ids 0..3 are
  ``SPECIAL_TOKENS``).
* ``clip_tokenizer``, ``roberta_tokenizer``, ``t5_tokenizer`` — the tokenizer classes the tiny diffusers pipelines
  expect (Stable Diffusion / AnimateDiff, AudioLDM 2's CLAP tower, AudioLDM 2's T5), same merges learnt the same way.

All BPE tokenizers are learnt by one function, ``_train_bpe``; the T5 one is a unigram model, counted directly.
"""

from __future__ import annotations

import json
import math
import string
from collections import Counter

import torch

from .. import world
from ..instructions import PAIRS, train_templates
from ..meta import format_meta

SPECIAL_TOKENS = ["<pad>", "</s>", "<s>", "<unk>"]  # ids 0..3; CLIP pools at </s> (id 1), CLAP at <s>
MAX_TOKENS = 32  # text length every tiny diffusers tokenizer pads / truncates to (the real CLIP uses 77)
_PIPELINE_VOCAB = 1000  # vocabulary size of the diffusers pipelines' BPE tokenizers


# ---- the corpus -----------------------------------------------------------------------------------------------
def caption_corpus(split: str = "all") -> list[str]:
    """Every sentence of the world itself: captions, frame captions and meta-responses, of the attribute
    combinations of ``split`` ("all", or "seen": without ``world.UNSEEN``). The encoders' and the pipelines'
    tokenizers learn from all of them (they never read an instruction, and a real CLIP has seen every colour of
    every shape); the LLM only from the seen ones."""
    lines = []
    for modality in world.MODALITIES:
        for combo in world.combinations(modality, split):
            text = world.caption(modality, dict(zip(world.ATTRIBUTES[modality], combo)))
            lines += [text, f"this is {text}.", format_meta(modality, text)]
    for colour, shape in world.combinations("image", split):
        name = world.caption("image", {"colour": colour, "shape": shape})
        lines += [f"{name} at the {where}" for row in world._GRID for where in row]
    lines += [format_meta("text", word) for word in (*world.COLOURS, *world.SHAPES, *world.DIRECTIONS,
                                                      *world.PITCHES, *world.TIMBRES)]
    return lines


#: Words a real LLM brings from the web and a tiny one must read somewhere: what making, seeing, hearing, moving and
#: describing are called. Plain statements, never a request and never paired with an answer (``usage_corpus``).
GLOSSARY = (
    "to draw, to paint, to sketch, to depict, to illustrate, to render and to visualise are to make a picture.",
    "an image, a picture, a photo, a drawing, a painting, a still frame and a snapshot are things you see.",
    "to play, to compose, to synthesise, to sound and to record are to make a sound.",
    "a sound, a tone, a note, a recording and audio are things you hear; to listen is to hear.",
    "to animate, to film and to shoot a clip are to make a video.",
    "a video, a clip, a film, a movie, footage and an animation are pictures that move.",
    "to move, to go, to travel, to drift, to head, to glide, to slide and to float are ways to move.",
    "to describe, to caption, to name, to explain, to summarise, to tell and to say are to answer in words.",
    "to put something into words is to describe it; a caption is a few words.",
    "to turn, to convert, to change, to transform and to translate are to make one thing into another.",
    "a question asks for words: what, which, where, how and why begin questions.",
    "a colour, a shape, a direction, a pitch and a timbre are words that describe things.",
)
_MOVING = ("moves", "goes", "travels", "drifts", "heads", "glides", "slides", "floats")


def usage_corpus() -> list[str]:
    """The ``GLOSSARY`` and the seen world described in its words: "a red circle drifts left", "you hear a low sine
    tone", "a photo of a red circle", "in words, a red circle"."""
    lines = list(GLOSSARY)
    still = set(world.combinations("image", "seen"))
    for i, (colour, shape, direction) in enumerate(world.combinations("video", "seen")):
        if (colour, shape) not in still:  # "a red triangle drifts left" would name an unseen image on its own
            continue
        thing = world.caption("image", {"colour": colour, "shape": shape})
        moving = world.caption("video", {"colour": colour, "shape": shape, "direction": direction})
        lines += [f"{thing} {_MOVING[(i + k) % len(_MOVING)]} {direction}: {moving}." for k in (0, 3)]
    for pitch, timbre in world.combinations("audio", "seen"):
        tone = world.caption("audio", {"pitch": pitch, "timbre": timbre})
        lines += [f"you hear {tone}.", f"a recording of {tone}.", f"in words, the sound is {tone}."]
    for colour, shape in world.combinations("image", "seen"):
        thing = world.caption("image", {"colour": colour, "shape": shape})
        lines += [f"you see {thing}.", f"a photo of {thing}.", f"in words, the picture shows {thing}."]
    return lines


def world_corpus() -> list[str]:
    """What the tiny LLM reads in pretraining: the seen part of ``caption_corpus``, ``usage_corpus`` and the
    training phrasings of every pair, as plain sentences (never paired with answers). Nothing of the held-out
    splits is in it: no caption of an unseen combination and no held-out phrasing (``instructions.HELD_OUT``), or
    the ``unseen`` and ``phrasing`` splits would test sentences the LLM has read."""
    return caption_corpus("seen") + usage_corpus() + sorted({t for pair in PAIRS for t in train_templates(pair)})


def unseen_captions() -> list[str]:
    """The captions of every held-out combination (``world.UNSEEN``): text the LLM must never read before its test."""
    return [world.caption(m, dict(zip(world.ATTRIBUTES[m], c))) for m in world.MODALITIES
            for c in world.combinations(m, "unseen")]


def copy_corpus(n: int, seed: int) -> list[str]:
    """Repeat-after-me lines of random world words: a general skill real LLMs bring (copying from context),
    which a tiny LM must learn somewhere. No instruction, no meta-response and no unseen caption appears here."""
    rng = torch.Generator().manual_seed(seed)
    words = sorted({w for line in world_corpus() for w in line.lower().strip(".").split() if w.isalpha()})
    cues = ("repeat: {x}. again: {x}", "say {x} | {x}", "{x} → {x}", "copy this: {x}. done: {x}",
            "{x}. first word: {w[0]}", "{x}. second word: {w[1]}", "{x}. third word: {w[2]}", "{x}. last word: {last}")
    unseen = unseen_captions()
    lines = []
    while len(lines) < n:
        w = [words[int(i)] for i in torch.randint(len(words), (int(torch.randint(3, 6, (1,), generator=rng)),),
                                                  generator=rng)]
        line = cues[int(torch.randint(len(cues), (1,), generator=rng))].format(x=" ".join(w), w=w, last=w[-1])
        if not any(c in line for c in unseen):
            lines.append(line)
    return lines


# ---- the one BPE trainer --------------------------------------------------------------------------------------
def _train_bpe(backend, corpus: list[str], vocab_size: int, special_tokens: list[str], **trainer_args):
    """Learn byte-level BPE merges on ``corpus`` into ``backend`` (a 🤗 ``tokenizers.Tokenizer``), in place.

    The backend keeps its own normaliser and pre-tokeniser, so each tokenizer class splits words its own way. The
    special tokens come first (ids 0, 1, …) and every byte is in the alphabet, so no text is ever unknown.
    """
    from tokenizers import pre_tokenizers, trainers

    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), **trainer_args)
    backend.train_from_iterator(corpus, trainer)
    return backend


def _vocab_and_merges(backend, first: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A trained BPE backend's (vocab, merges), numbered in a fixed order: ``first`` (special tokens and the
    alphabet), then each merged token in the order it was learnt."""
    model = json.loads(backend.to_str())["model"]
    merges = [tuple(pair) for pair in model["merges"]]
    tokens = list(dict.fromkeys(first + ["".join(pair) for pair in merges]))
    assert set(model["vocab"]) <= set(tokens), "the trainer learnt a token outside the alphabet and the merges"
    return {token: i for i, token in enumerate(tokens)}, merges


def train_tokenizer(corpus: list[str], vocab_size: int):
    """A byte-level BPE tokenizer (any text encodes) wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    _train_bpe(tok, corpus, vocab_size, SPECIAL_TOKENS)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", bos_token="<s>",
                                   unk_token="<unk>", model_max_length=64)


# ---- the diffusers pipelines' tokenizers ----------------------------------------------------------------------
def clip_tokenizer(corpus: list[str]):
    """A byte-level BPE ``CLIPTokenizer`` (the class Stable Diffusion and AnimateDiff expect).

    CLIP lowercases, splits off punctuation and marks the end of each word with ``</w>``; every byte, with and
    without it, is in the vocabulary, so no text is ever unknown.
    """
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    special = ["<|startoftext|>", "<|endoftext|>"]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    word_ends = [b + "</w>" for b in alphabet]
    # The trainer would number the word ends in the (random) order it meets them, and a tie between two equally
    # frequent merges goes to the lower ids; listing them up front fixes their ids, so every run learns the same merges.
    backend = _train_bpe(CLIPTokenizer().backend_tokenizer, corpus, _PIPELINE_VOCAB, special + word_ends,
                         end_of_word_suffix="</w>")
    vocab, merges = _vocab_and_merges(backend, special + alphabet + word_ends)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=MAX_TOKENS)


def roberta_tokenizer(corpus: list[str]):
    """A byte-level BPE ``RobertaTokenizer`` (what CLAP's text tower reads): <s>=0, <pad>=1, </s>=2, <unk>=3."""
    from tokenizers import pre_tokenizers
    from transformers import RobertaTokenizer

    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = _train_bpe(RobertaTokenizer().backend_tokenizer, corpus, _PIPELINE_VOCAB, special)
    vocab, merges = _vocab_and_merges(backend, special + alphabet)
    return RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=MAX_TOKENS)


def t5_tokenizer(corpus: list[str]):
    """A Unigram ``T5Tokenizer`` (sentencepiece-style, as in T5): <pad>=0, </s>=1, <unk>=2, no sentinel ids.

    A unigram model is just pieces with log-probabilities. On a corpus this small the EM trainer of ``tokenizers``
    collapses to single letters, so we count instead: every word ("▁red") scores its log frequency, and single
    characters, much less likely, spell out any word the world never used.
    """
    from transformers import T5Tokenizer

    words = Counter("\u2581" + word for line in corpus for word in line.split())
    total = sum(words.values())
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(word, math.log(n / total)) for word, n in sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))]
    rare, known = math.log(1 / total) - 2.0, {piece for piece, _ in pieces}
    letters = "\u2581" + string.ascii_letters + string.digits + string.punctuation
    pieces += [(c, rare) for c in letters if c not in known]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=MAX_TOKENS)
