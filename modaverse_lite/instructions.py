"""The instructions: every input→output pair of the paper, and the phrasings that ask for each (pure data).

A pair is named by its inputs and its output: ``"video+text->audio"`` (a clip and an instruction in, a sound out),
``"text->image"``, ``"image+text->text"``, ``"text->text"``. Each pair has ten or so hand-written phrasings; the last
``HELD_OUT_PER_PAIR`` of each are never used in training and make the ``phrasing`` split, which asks whether the
model understood the request or memorised its wording. Hundreds more training phrasings per pair are generated
from frames ("turn {o} into {y}": ways to ask × ways to name the input × ways to name the output), the stand-in
for the paper's GPT rewrites; none is allowed near a held-out one (``near_held_out``).

Placeholders: ``{caption}`` (a world caption or a teacher's caption), ``{direction}`` (left/right/up/down).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from . import world

#: The version of the world dataset's recipe (pairs, templates, builder): part of the default dataset's folder name.
RECIPE_VERSION = 3
#: The version of the demo records' draws (``edits.demo_record``): part of a demos dataset's folder name.
DEMO_RECIPE_VERSION = 2
MODALITIES = world.MODALITIES  # the media a record can carry: image, audio, video
TARGET_MODALITIES = (*MODALITIES, "text")


def pair_name(inputs: Sequence[str], target: str) -> str:
    """``(["video"], "audio")`` → ``"video+text->audio"``; ``([], "image")`` → ``"text->image"``."""
    ordered = [m for m in MODALITIES if m in inputs]
    return "+".join([*ordered, "text"]) + "->" + target


#: Every input→output pair of the paper: X→text, text→X, X→Y and text→text.
PAIRS: list[str] = (
    [pair_name([m], "text") for m in MODALITIES]
    + [pair_name([], m) for m in MODALITIES]
    + [pair_name([x], y) for x in MODALITIES for y in MODALITIES if x != y]
    + [pair_name([], "text")]
)

# ---- templates -------------------------------------------------------------------------------------------------
# For text->text the last phrasing of every question kind is held out.
HELD_OUT_PER_PAIR = 2

_X_TO_TEXT = {
    "image": ["Describe this image.", "What is in this picture?", "What do you see here?",
              "Write a short caption for this image.", "What does this picture show?",
              "Tell me what is drawn in this image.", "Which shape and colour are in this picture?",
              "Name the object in this image.",
              "Could you put this picture into words?", "Summarise the image in a few words."],
    "audio": ["Describe this sound.", "What do you hear in this clip?", "What kind of tone is this?",
              "Write a short caption for this audio.", "Tell me what this sound is.",
              "How would you describe this tone?", "Name the pitch and timbre of this sound.",
              "What does this recording contain?",
              "Put this sound into words, please.", "Listen and say what tone it is."],
    "video": ["Describe this video.", "What happens in this clip?", "What is moving in this video?",
              "Write a short caption for this video.", "Tell me what this clip shows.",
              "Which shape moves in this video, and where to?", "Summarise this animation.",
              "What do you see in this video?",
              "Explain in a few words what the clip shows.", "Watch this and describe the motion."],
}
_TEXT_TO_X = {
    "image": ["Draw {caption}.", "Generate an image of {caption}.", "Show me a picture of {caption}.",
              "Paint {caption}.", "Create an image showing {caption}.",
              "Can you make a picture of {caption}?",
              "I would like an image of {caption}.", "Sketch {caption} for me.",
              "Render a still picture of {caption}.", "Please illustrate {caption}."],
    "audio": ["Play {caption}.", "Generate the sound of {caption}.", "Compose {caption}.",
              "Make a sound: {caption}.", "Create audio of {caption}.", "Can you synthesise {caption}?",
              "I want to hear {caption}.", "Produce {caption} for me.",
              "Let me listen to {caption}.", "Record {caption}, please."],
    "video": ["Animate {caption}.", "Generate a video of {caption}.", "Make a clip showing {caption}.",
              "Create an animation of {caption}.", "Show me a video of {caption}.", "Can you film {caption}?",
              "I would like a short video of {caption}.", "Produce an animated clip of {caption}.",
              "Render a moving picture of {caption}.", "Please make a movie of {caption}."],
}
_X_TO_Y = {
    ("image", "audio"): ["What would this image sound like?", "Turn this picture into a sound.",
                         "Play the sound of this image.", "Compose a tone that matches this picture.",
                         "Make this image audible.", "Generate the sound that belongs to this shape.",
                         "Give me audio for this picture.",
                         "Let me hear what this picture sounds like.", "Convert the image into a tone."],
    ("image", "video"): ["Make this image move {direction}.", "Animate this picture moving {direction}.",
                         "Turn this image into a video where it moves {direction}.",
                         "Create a clip of this shape going {direction}.",
                         "Bring this picture to life, moving {direction}.",
                         "Generate a video of this object heading {direction}.",
                         "Make a movie of this picture drifting {direction}.",
                         "Let this shape travel {direction} in a clip."],
    ("audio", "image"): ["Draw what this sound looks like.", "Show me a picture of this tone.",
                         "Turn this sound into an image.", "What would this tone look like? Draw it.",
                         "Paint this sound.", "Generate an image that matches this audio.",
                         "Make a picture for this sound.",
                         "Visualise this tone as a still image.", "Convert the audio into a picture."],
    ("audio", "video"): ["Animate this sound as a shape moving {direction}.",
                         "Turn this tone into a video moving {direction}.",
                         "Make a clip of this sound's shape going {direction}.",
                         "Show this sound as an animation heading {direction}.",
                         "Generate a video for this audio, moving {direction}.",
                         "Create an animation of this tone travelling {direction}.",
                         "Let this sound become a shape that drifts {direction}.",
                         "Convert the audio into a clip moving {direction}."],
    ("video", "image"): ["Show this clip as a still image.", "Freeze this video into a picture.",
                         "Draw the object in this video standing still.", "Turn this video into an image.",
                         "Make a still picture of what moves here.",
                         "Generate an image of this clip's shape.",
                         "Take a snapshot of the object in this video.",
                         "Convert the clip into a single picture.", "Paint this animation as a still frame."],
    ("video", "audio"): ["Turn this video into a sound.", "What would this clip sound like?",
                         "Play the sound of this video.", "Compose a tone that matches this clip.",
                         "Make this animation audible.", "Generate audio for this video.",
                         "Give me the sound of the moving shape.",
                         "Let me hear what this clip sounds like.", "Convert the video into a tone."],
}


# ---- generated phrasings ---------------------------------------------------------------------------------------
# The hand-written phrasings above are few; a tiny LLM that sees only eight ways to ask would learn their words, not
# the request. Below, each pair's request is also asked in many more ways, made by filling frames with ways to name
# the medium (the paper rewrote its instructions with GPT; this is our stand-in). Generated phrasings only ever
# train: a generated sentence that equals a held-out one (``HELD_OUT``) is dropped, and a test checks that none
# of the held-out phrasings reaches training or the LLM's pretraining text.
_POLITE = ("{v}", "Please {v}", "Could you {v}?", "Can you {v}?", "I would like you to {v}")

_NAMES = {  # ways to point at the input medium
    "image": ("this image", "this picture", "the image", "the picture", "this drawing", "this photo"),
    "audio": ("this sound", "this tone", "the sound", "the audio", "this recording", "this note"),
    "video": ("this video", "this clip", "the video", "this animation", "the clip", "this footage"),
}
_DESCRIBE = {  # ways to ask for words about the input medium {o}
    "all": ("describe {o}", "caption {o}", "write a caption for {o}", "give a short description of {o}",
            "tell me about {o}", "say in words what {o} is", "explain {o} in words", "describe {o} briefly",
            "name what is in {o}", "summarise {o}", "put {o} into a sentence", "write one line about {o}",
            "tell me in words what {o} contains", "answer in words: what is {o}", "put {o} into words",
            "say what {o} is", "describe {o} in a few words", "sum up {o} in words"),
    "image": ("look at {o} and describe it", "tell me the colour and shape in {o}", "tell me what you see in {o}",
              "look at {o} and say what it shows"),
    "audio": ("listen to {o} and describe it", "tell me the pitch and timbre of {o}", "tell me what you hear in {o}",
              "listen to {o} and say what it is"),
    "video": ("watch {o} and tell me what happens", "tell me where the shape in {o} goes",
              "tell me what you see in {o}", "watch {o} and say what moves"),
}
_ASK_TEXT = {
    "image": ("What is in {o}?", "What does {o} show?", "In words, what is {o}?", "Which object is in {o}?",
              "What shape and colour does {o} have?"),
    "audio": ("What is {o}?", "What tone is {o}?", "In words, what is {o}?", "Which tone do you hear in {o}?",
              "Which pitch and timbre does {o} have?"),
    "video": ("What is in {o}?", "What does {o} show?", "In words, what is {o}?", "Which object moves in {o}?",
              "Where does the shape in {o} go?"),
}
_MAKE = {  # ways to ask for an output medium from a caption
    "image": ("draw {c}", "paint {c}", "sketch {c}", "generate an image of {c}", "create a picture of {c}",
              "make an image of {c}", "show me a picture of {c}", "give me a picture of {c}", "depict {c}",
              "draw a picture of {c}", "produce an image of {c}", "make a drawing of {c}"),
    "audio": ("play {c}", "compose {c}", "synthesise {c}", "generate the sound of {c}", "create audio of {c}",
              "make a sound of {c}", "give me the sound of {c}", "produce the tone of {c}", "sound {c}",
              "play the sound of {c}", "make me a tone: {c}", "generate audio of {c}"),
    "video": ("animate {c}", "film {c}", "generate a video of {c}", "create a clip of {c}", "make a video of {c}",
              "show me an animation of {c}", "give me a clip of {c}", "produce a video of {c}",
              "make an animation of {c}", "shoot a clip of {c}", "generate a moving clip of {c}",
              "create a short film of {c}"),
}
_OUTPUTS = {  # ways to name the output medium {y}
    "image": ("an image", "a picture", "a drawing", "a photo", "a painting"),
    "audio": ("a sound", "a tone", "audio", "a note", "a recording"),
    "video": ("a video", "a clip", "an animation", "a film", "a movie"),
}
_INTO = ("turn {o} into {y}", "change {o} into {y}", "transform {o} into {y}", "make {y} from {o}",
         "create {y} from {o}", "give me {y} for {o}", "show {o} as {y}", "take {o} and convert it to {y}")
_TURN = {  # ways to ask for an output medium {y} from an input medium {o}
    "image": (*_INTO, "draw {o} as {y}", "draw what {o} would look like", "let me see {o} as {y}",
              "show me what {o} looks like", "paint {y} for {o}"),
    "audio": (*_INTO, "play {o} as {y}", "play what {o} would sound like", "let me hear {o} as {y}",
              "compose {y} for {o}", "make {o} into something I can hear"),
    "video": (*(f"{frame} moving {{direction}}" for frame in _INTO), "animate {o} moving {direction}",
              "make {o} move {direction} in {y}", "make {o} drift {direction} in {y}",
              "let {o} glide {direction} in {y}", "show {o} travelling {direction} in {y}",
              "have {o} float {direction} in {y}"),
}
MAX_GENERATED = 900  # generated phrasings per pair at most (an even spread over the frames, in a fixed order)


#: Extra ways to ask each text→text question (``Question.kind`` → frames; ``{caption}`` names the subject).
_ASK = {
    "sound": ("What tone does {caption} make?", "Tell me the sound that goes with {caption}.",
              "Which sound belongs to {caption}?", "Say in words what {caption} sounds like.",
              "What tone would {caption} have?", "In words, how does {caption} sound?"),
    "look": ("What picture goes with {caption}?", "Tell me the shape that belongs to {caption}.",
             "Say in words what {caption} looks like.", "What would {caption} look like in a picture?",
             "In words, how does {caption} look?"),
    "still": ("Tell me which object {caption} is.", "Which object moves in {caption}?",
              "Say in words what {caption} is when it stops.", "What is the object in {caption}?",
              "If {caption} stood still, what would it be?"),
    **{kind: (f"What is the {kind} of {{caption}}?", f"Tell me the {kind} of {{caption}}.",
              f"Which {kind} does {{caption}} have?", f"Say the {kind} of {{caption}}.",
              f"Could you tell me the {kind} of {{caption}}?", f"In one word, what {kind} is {{caption}}?")
       for kind in ("colour", "shape", "pitch", "timbre")},
    "direction": ("What is the direction of {caption}?", "Tell me the direction of {caption}.",
                  "Which way does {caption} go?", "Where does {caption} go?",
                  "In one word, which direction is {caption}?"),
}


def _sentence(frame: str, verb: str) -> str:
    text = frame.format(v=verb)
    text = text[0].upper() + text[1:]
    return text if text.endswith("?") else text + "."


def _spread(items: list[str], most: int) -> list[str]:
    """An even spread of at most ``most`` of ``items``, in their order."""
    return items[::-(-len(items) // most)]


def _generated(pair: str) -> list[str]:
    """The generated phrasings of ``pair`` (text→text: see ``_ASK``), in a fixed order."""
    inputs, target = pair.split("->")
    source = inputs.split("+")[0] if "+" in inputs else None
    if source is None:  # text -> X
        verbs = [v.replace("{c}", "{caption}") for v in _MAKE[target]]
        return [_sentence(f, v) for v in verbs for f in _POLITE]
    if target == "text":
        verbs = [v.replace("{o}", o) for o in _NAMES[source] for v in (*_DESCRIBE["all"], *_DESCRIBE[source])]
    else:
        verbs = list(dict.fromkeys(v.replace("{o}", o).replace("{y}", y) for o in _NAMES[source]
                                   for v in _TURN[target] for y in _OUTPUTS[target]))
    out = [_sentence(f, v) for v in verbs for f in _POLITE]
    if target == "text":
        out += [q.format(o=o) for o in _NAMES[source] for q in _ASK_TEXT[source]]
    return _spread(out, MAX_GENERATED)


@dataclass(frozen=True)
class Question:
    """A kind of text→text question: about which media, answered how, in which phrasings."""

    kind: str  # "sound", "look", "still" or an attribute name
    subjects: tuple[str, ...]  # the modalities the question may be about
    phrasings: tuple[str, ...]  # the last one is held out


QUESTIONS = (
    Question("sound", ("image",), ("What does {caption} sound like?", "Which tone belongs to {caption}?",
                                    "If {caption} made a sound, what would it be?",
                                    "What is the sound of {caption}?")),
    Question("look", ("audio",), ("What does {caption} look like?", "Which shape goes with {caption}?",
                                   "If {caption} were a picture, what would it show?",
                                   "What is the picture of {caption}?")),
    Question("still", ("video",), ("What does {caption} look like standing still?",
                                    "Which object is {caption}?", "Without the motion, what is {caption}?")),
    Question("colour", ("image", "video"), ("What colour is {caption}?", "Which colour does {caption} have?",
                                             "Name the colour of {caption}.")),
    Question("shape", ("image", "video"), ("What shape is {caption}?", "Which shape is {caption}?",
                                            "Name the shape of {caption}.")),
    Question("direction", ("video",), ("In which direction does {caption} go?", "Which way is {caption}?",
                                        "Where is {caption} heading?")),
    Question("pitch", ("audio",), ("What pitch is {caption}?", "How high is {caption}?",
                                    "Name the pitch of {caption}.")),
    Question("timbre", ("audio",), ("Which timbre does {caption} have?", "What waveform is {caption}?",
                                     "Name the timbre of {caption}.")),
)

#: The hand-written phrasings of every pair, the held-out ones last.
_HAND: dict[str, list[str]] = {
    **{pair_name([m], "text"): list(t) for m, t in _X_TO_TEXT.items()},
    **{pair_name([], m): list(t) for m, t in _TEXT_TO_X.items()},
    **{pair_name([x], y): list(t) for (x, y), t in _X_TO_Y.items()},
    pair_name([], "text"): [p for q in QUESTIONS for p in q.phrasings],
}
#: The phrasings of each pair used only by the "phrasing" split: the last hand-written ones.
HELD_OUT: dict[str, tuple[str, ...]] = {
    **{pair: tuple(t[-HELD_OUT_PER_PAIR:]) for pair, t in _HAND.items() if pair != "text->text"},
    "text->text": tuple(q.phrasings[-1] for q in QUESTIONS),
}
#: The held-out phrasings of the demo pairs (below, filled at the end of this module; ``held_out`` reads both).
DEMO_HELD_OUT: dict[str, tuple[str, ...]] = {}
_SMALL_WORDS = frozenset("a an the this that of to for me you i it its is be please could can would like will in "
                         "into on at with and my your".split())


def _content(sentence: str) -> frozenset[str]:
    return frozenset(w for w in re.sub(r"[^\w{} ]", " ", sentence.lower()).split() if w not in _SMALL_WORDS)


def near_held_out(phrasing: str, bound: float = 0.8) -> bool:
    """Whether ``phrasing`` shares ``bound`` of its content words (Jaccard) with a held-out phrasing of any pair:
    "Can you illustrate {caption}?" is "Please illustrate {caption}." asked again, so it may not train."""
    words = _content(phrasing)
    return any(len(words & _content(h)) >= bound * len(words | _content(h))
               for held in (*HELD_OUT.values(), *DEMO_HELD_OUT.values()) for h in held)


#: The ways to ask each text→text question: the hand-written ones and ``_ASK``'s; the last one is held out.
QUESTIONS = tuple(Question(q.kind, q.subjects, (*dict.fromkeys((*q.phrasings[:-1],
                                                                *(a for a in _ASK[q.kind] if not near_held_out(a)))),
                                                q.phrasings[-1]))
                  for q in QUESTIONS)

#: Every phrasing of every pair, the held-out ones included (see ``HELD_OUT``): the hand-written ones, and the
#: generated ones that are not near a held-out phrasing (``near_held_out``).
TEMPLATES: dict[str, list[str]] = {pair: list(t) for pair, t in _HAND.items()}
TEMPLATES["text->text"] = [p for q in QUESTIONS for p in q.phrasings]
for _pair in PAIRS:
    if _pair != "text->text":
        _extra = [t for t in dict.fromkeys(_generated(_pair)) if t not in _HAND[_pair] and not near_held_out(t)]
        TEMPLATES[_pair] = _HAND[_pair][:-HELD_OUT_PER_PAIR] + _extra + _HAND[_pair][-HELD_OUT_PER_PAIR:]


def phrasings(pair: str) -> list[str]:
    """Every phrasing of ``pair``, a default pair (``TEMPLATES``) or a demo pair (``DEMO_TEMPLATES``)."""
    return TEMPLATES[pair] if pair in TEMPLATES else DEMO_TEMPLATES[pair]


def held_out(pair: str) -> tuple[str, ...]:
    """The held-out phrasings of ``pair`` (``HELD_OUT`` or ``DEMO_HELD_OUT``): the ``phrasing`` split's."""
    return HELD_OUT[pair] if pair in HELD_OUT else DEMO_HELD_OUT[pair]


def train_templates(pair: str) -> list[str]:
    """The phrasings of ``pair`` that train/val/test/unseen records use."""
    return [t for t in phrasings(pair) if t not in held_out(pair)]


# ---- the demo requests (opt-in: ``pairs="all"``) -----------------------------------------------------------------
# Three kinds of request the default pairs cannot answer: an edit within one modality, two media in one request and
# two outputs in one answer. They come after everything above so that the default pairs, their phrasings and the
# LLM's pretraining text (``zoo.text.world_corpus`` reads ``PAIRS``) stay exactly as they were; ``edits.py`` holds
# their world rules. Each edit kind or request has hand-written phrasings (the last one held out) and generated
# ones (``_DEMO_VERBS`` × ways to name the medium × ``_POLITE``).

#: An edit kind: the pair it belongs to and the placeholder its phrasings fill (None: the edit takes no value).
EDIT_KINDS: dict[str, tuple[str, str | None]] = {
    "recolour": ("image", "colour"), "reshape": ("image", "shape"),
    "repitch": ("audio", "pitch"), "retimbre": ("audio", "timbre"),
    "reverse": ("video", None), "turn": ("video", None), "tint": ("video", "colour"),
}
_EDIT_HAND = {
    "recolour": ("Recolour this image {colour}.", "Make this shape {colour}.", "Paint this picture {colour} instead.",
                 "Change the colour of this image to {colour}.", "Give this drawing a {colour} colour.",
                 "Turn the shape in this picture {colour}."),
    "reshape": ("Turn this shape into a {shape}.", "Make this picture a {shape} instead.",
                "Redraw this image as a {shape}.", "Change the shape in this image to a {shape}.",
                "Keep the colour but make it a {shape}.", "Swap the shape of this picture for a {shape}."),
    "repitch": ("Make this tone {pitch}.", "Play this sound at a {pitch} pitch.", "Shift this tone to {pitch}.",
                "Change the pitch of this sound to {pitch}.", "Give this note a {pitch} pitch.",
                "Move this recording to a {pitch} pitch."),
    "retimbre": ("Play this tone as a {timbre} wave.", "Make this sound a {timbre} tone.",
                 "Change the timbre of this sound to {timbre}.", "Give this note a {timbre} timbre.",
                 "Keep the pitch but use a {timbre} wave.", "Swap the waveform of this tone for {timbre}."),
    "reverse": ("Reverse the motion in this video.", "Play this clip backwards.", "Make the shape go the other way.",
                "Flip the direction of this animation.", "Run this clip in reverse.",
                "Send the moving shape back where it came from."),
    "turn": ("Turn the motion of this video clockwise.", "Rotate the direction of this clip a quarter turn clockwise.",
             "Make the shape move a quarter turn to the right of its path.",
             "Turn this animation's motion clockwise by ninety degrees.", "Steer the moving shape clockwise.",
             "Bend the path of this clip a right angle clockwise."),
    "tint": ("Recolour this video {colour}.", "Make the moving shape {colour}.", "Paint this clip {colour}.",
             "Change the colour of this animation to {colour}.", "Give the shape in this clip a {colour} colour.",
             "Tint this footage {colour}."),
}
_DEMO_VERBS = {  # generated phrasings: verbs with {o} (the medium) and the edit's placeholder
    "recolour": ("make {o} {colour}", "recolour {o} {colour}", "colour {o} {colour}", "paint {o} {colour}",
                 "change {o} to {colour}"),
    "reshape": ("make {o} a {shape}", "reshape {o} into a {shape}", "turn {o} into a {shape}",
                "change {o} into a {shape}", "redraw {o} as a {shape}"),
    "repitch": ("make {o} {pitch}", "shift {o} to a {pitch} pitch", "play {o} {pitch}", "retune {o} to {pitch}",
                "change {o} to a {pitch} pitch"),
    "retimbre": ("make {o} a {timbre} tone", "play {o} with a {timbre} wave", "change {o} to {timbre}",
                 "use a {timbre} wave for {o}", "give {o} a {timbre} sound"),
    "reverse": ("reverse {o}", "play {o} backwards", "reverse the motion of {o}", "flip the motion of {o}",
                "make {o} move the opposite way", "send {o} back the way it came", "make {o} go back",
                "run {o} the other way round", "make the shape in {o} head back"),
    "turn": ("turn the motion of {o} clockwise", "rotate {o} clockwise", "turn {o} a quarter turn clockwise",
             "steer {o} clockwise", "make {o} turn clockwise", "bend the motion of {o} clockwise",
             "swing the path of {o} clockwise", "send {o} off at a right angle, clockwise"),
    "tint": ("make {o} {colour}", "recolour {o} {colour}", "tint {o} {colour}", "paint {o} {colour}",
             "change the colour of {o} to {colour}"),
}
#: Two media in, or two outputs out: each pair's hand-written phrasings (the last one held out) and verbs.
_COMBINED_HAND = {
    "image+audio+text->text": ("Describe this picture and this sound.", "What do you see and what do you hear?",
                               "Name the shape and the tone.", "Caption the image and the audio.",
                               "Tell me what is drawn and what is played.", "Say what the picture and sound are."),
    "image+video+text->text": ("Describe this picture and this clip.", "What is in the image and in the video?",
                               "Caption the still image and the animation.", "Name the shape and what moves.",
                               "Tell me what the picture and the clip show.", "Say what the image and video are."),
    "audio+video+text->text": ("Describe this sound and this clip.", "What do you hear and what do you see moving?",
                               "Caption the audio and the video.", "Name the tone and the moving shape.",
                               "Tell me what the sound and the clip are.", "Say what is played and what moves."),
    "image+audio+text->video": ("Make a clip of the sound's shape in the picture's colour, moving {direction}.",
                                "Animate this sound's shape in this image's colour going {direction}.",
                                "Combine them into a video: the tone's shape, the picture's colour, heading "
                                "{direction}.", "Use the colour of the image and the shape of the sound in a clip "
                                "moving {direction}.", "Film the sound's shape painted like the picture, moving "
                                "{direction}.", "Mix the picture and the tone into an animation drifting "
                                "{direction}."),
    "image+video+text->video": ("Make this picture move the way the clip moves.",
                                "Animate the image with the motion of the video.",
                                "Give the picture's shape the clip's direction.",
                                "Put the object of the image on the path of the video.",
                                "Move this drawing like the shape in the clip.",
                                "Let the picture follow the motion of this footage."),
    "audio+video+text->video": ("Recolour this clip with the colour of this sound.",
                                "Paint the moving shape in the sound's colour.",
                                "Give the video the colour this tone looks like.",
                                "Colour the animation the way the sound sounds.",
                                "Tint this clip with the tone's colour.",
                                "Let the sound decide the colour of the moving shape."),
    "image+text->text+audio": ("Describe this picture and play its sound.", "Say what this image is, then make it "
                               "audible.", "Caption the picture and give me its tone.", "Name this shape and play "
                               "how it sounds.", "Tell me what is drawn and let me hear it.",
                               "Put this picture into words and into a tone."),
    "audio+text->text+image": ("Describe this sound and draw it.", "Say what this tone is, then show it as a "
                               "picture.", "Caption the audio and paint what it looks like.", "Name this tone and "
                               "draw its shape.", "Tell me what you hear and draw it for me.",
                               "Put this sound into words and into a picture."),
    "text->image+audio": ("Draw {caption} and play its sound.", "Show me {caption} and let me hear it.",
                          "Paint {caption}, then play how it sounds.", "Make a picture of {caption} and its tone.",
                          "Sketch {caption} and give me its sound.", "Create {caption} as a picture and a tone."),
}
_COMBINED_VERBS = {
    "image+audio+text->text": ("describe {o} and {p}", "caption {o} and {p}", "tell me what {o} and {p} are"),
    "image+video+text->text": ("describe {o} and {p}", "caption {o} and {p}", "tell me what {o} and {p} are"),
    "audio+video+text->text": ("describe {o} and {p}", "caption {o} and {p}", "tell me what {o} and {p} are"),
    "image+audio+text->video": ("animate the shape of {p} in the colour of {o}, moving {direction}",
                                "make a clip of {p}'s shape in {o}'s colour going {direction}",
                                *(f"{v} {y} moving {{direction}}" for v in ("turn {o} and {p} into",
                                                                             "combine {o} and {p} into",
                                                                             "make {o} and {p} into")
                                  for y in ("a video", "a clip", "an animation", "a film"))),
    "image+video+text->video": ("move {o} the way {p} moves", "animate {o} with the motion of {p}",
                                "make {o} move like {p}", "give {o} the motion of {p}",
                                "let {o} move the way {p} does", "copy the motion of {p} onto {o}",
                                "have {o} travel along the path of {p}", "make {o} go where {p} goes"),
    "audio+video+text->video": ("recolour {p} with the colour of {o}", "paint {p} in the colour of {o}"),
    "image+text->text+audio": ("describe {o} and play its sound", "caption {o} and play how it sounds"),
    "audio+text->text+image": ("describe {o} and draw it", "caption {o} and draw what it looks like"),
    "text->image+audio": ("draw {caption} and play its sound", "paint {caption} and play how it sounds"),
}


#: Ways to ask for the second output of a two-output request, about "it" (the medium or caption named first).
_THEN = {
    "audio": ("play its sound", "play how it sounds", "let me hear it", "make it audible", "give me its tone",
              "compose a tone for it", "play it as a sound", "turn it into a tone", "play the tone it makes",
              "let me listen to it"),
    "image": ("draw it", "draw what it looks like", "show it as a picture", "paint it", "make a picture of it",
              "turn it into an image", "sketch it", "show me what it looks like", "give me a picture of it",
              "draw its shape"),
}
_JOIN = (" and ", ", then ", " and also ")
#: ... or named by a noun (_OUTPUTS), as in "describe this tone and a picture of it too".
_THEN_NOUN = ("{y} of it too", "{y} of it as well", "{y} for it", "{y} to go with it")
#: Both outputs asked for at once: "give me {c} as a picture and a tone", "turn {o} into words and a picture".
_BOTH = {
    "text": ("give me {c} as {y} and {z}", "make {c} as {y} and {z}", "render {c} as {y} and as {z}",
             "produce {c} both as {y} and as {z}", "show {c} as {y} and {z}"),
    "media": ("turn {o} into words and {z}", "give me {o} in words and as {z}", "render {o} as words and {z}",
              "express {o} in words and in {z}", "describe {o} in words and with {z}"),
}


def _two_outputs(pair: str) -> list[str]:
    """Generated phrasings of a two-output pair, in the answer's order: a way to ask for the first output
    (``_DESCRIBE`` of the input, or ``_MAKE`` of the caption) joined to a way to ask for the second (``_THEN``, or a
    noun: ``_THEN_NOUN``), an even spread of half of ``MAX_GENERATED``; then both asked for at once (``_BOTH``)."""
    inputs, outputs = pair.split("->")
    first, second = outputs.split("+")
    source = inputs.split("+")[0] if "+" in inputs else None
    if source is None:  # text -> X + Y: make the caption, then the second output
        heads = [v.replace("{c}", "{caption}") for v in _MAKE[first]]
    else:  # X -> text + Y: words about the input, then the second output
        heads = [v.replace("{o}", o) for o in _NAMES[source] for v in (*_DESCRIBE["all"], *_DESCRIBE[source])
                 if " and " not in v]
    thens = [*_THEN[second], *(n.replace("{y}", y) for n in _THEN_NOUN for y in _OUTPUTS[second])]
    joined = [_sentence(f, h + j + t) for h in heads for t in thens for j in _JOIN for f in _POLITE]
    both = [v.replace("{c}", "{caption}").replace("{z}", z) for v in _BOTH["text" if source is None else "media"]
            for z in _OUTPUTS[second]]
    both = [v.replace("{y}", y).replace("{o}", o) for v in both for y in (_OUTPUTS[first] if source is None else ("",))
            for o in (_NAMES[source] if source else ("",))]
    both = [_sentence(f, v) for v in dict.fromkeys(both) for f in _POLITE]
    return list(dict.fromkeys([*_spread(joined, MAX_GENERATED // 2), *_spread(both, MAX_GENERATED // 2)]))


def _demo_generated(verbs, first: str | None, second: str | None) -> list[str]:
    """Phrasings from ``verbs`` with ``{o}`` / ``{p}`` named every way ``_NAMES`` knows, in a fixed order."""
    out = []
    for o in (_NAMES[first] if first else ("",)):
        for p in (_NAMES[second] if second else ("",)):
            out += [_sentence(f, v.replace("{o}", o).replace("{p}", p)) for v in verbs for f in _POLITE]
    return list(dict.fromkeys(out))


#: The edit pairs, the two-media pairs and the two-output pairs, in that order.
EDIT_PAIRS = [pair_name([m], m) for m in MODALITIES]
DEMO_PAIRS: list[str] = EDIT_PAIRS + list(_COMBINED_HAND)
ALL_PAIRS: list[str] = PAIRS + DEMO_PAIRS
#: The phrasings of each edit kind, the held-out one last; of each demo pair, the held-out ones last.
EDIT_TEMPLATES: dict[str, list[str]] = {}
DEMO_TEMPLATES: dict[str, list[str]] = {}
for _kind, (_m, _value) in EDIT_KINDS.items():
    _extra = [t for t in _demo_generated(_DEMO_VERBS[_kind], _m, None) if t not in _EDIT_HAND[_kind]]
    EDIT_TEMPLATES[_kind] = [*_EDIT_HAND[_kind][:-1], *_extra, _EDIT_HAND[_kind][-1]]
for _pair in EDIT_PAIRS:
    _kinds = [k for k, (m, _) in EDIT_KINDS.items() if pair_name([m], m) == _pair]
    DEMO_HELD_OUT[_pair] = tuple(EDIT_TEMPLATES[k][-1] for k in _kinds)
    DEMO_TEMPLATES[_pair] = [t for k in _kinds for t in EDIT_TEMPLATES[k]]
for _pair, _hand in _COMBINED_HAND.items():
    _ins = _pair.split("->")[0].split("+")[:-1]
    _extra = _demo_generated(_COMBINED_VERBS[_pair], *(_ins + [None, None])[:2])
    if "+" in _pair.split("->")[1]:
        _extra += _two_outputs(_pair)
    _extra = [t for t in dict.fromkeys(_extra) if t not in _hand]
    DEMO_HELD_OUT[_pair] = (_hand[-1],)
    DEMO_TEMPLATES[_pair] = [*_hand[:-1], *_extra, _hand[-1]]
# a generated demo phrasing near a held-out one (of any pair) may not train, as for the default pairs
for _kind, _t in EDIT_TEMPLATES.items():
    EDIT_TEMPLATES[_kind] = [t for t in _t[:-1] if t in _EDIT_HAND[_kind] or not near_held_out(t)] + _t[-1:]
for _pair in DEMO_PAIRS:
    DEMO_TEMPLATES[_pair] = [t for t in DEMO_TEMPLATES[_pair] if t in DEMO_HELD_OUT[_pair]
                             or t in _COMBINED_HAND.get(_pair, ()) or any(t in _EDIT_HAND[k] for k in EDIT_KINDS)
                             or not near_held_out(t)]


def demo_digest() -> str:
    """A short hash of every demo phrasing (``DEMO_TEMPLATES``, ``DEMO_HELD_OUT``) and ``DEMO_RECIPE_VERSION``: a
    cached dataset with the demo pairs is only reused while they are unchanged."""
    text = json.dumps([DEMO_RECIPE_VERSION, DEMO_TEMPLATES, {k: list(v) for k, v in DEMO_HELD_OUT.items()}],
                      sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def pairs_of(which: str) -> list[str]:
    """The pairs a world dataset covers: ``"default"`` (``PAIRS``, what every measured figure used) or ``"all"``
    (``ALL_PAIRS``: the default pairs, then the demo requests)."""
    if which == "default":
        return list(PAIRS)
    if which == "all":
        return list(ALL_PAIRS)
    raise ValueError(f"unknown pairs {which!r}; expected 'default' or 'all'")


def edit_kind(template: str) -> str:
    """The edit kind (a key of ``EDIT_KINDS``) a phrasing of an edit pair asks for."""
    return next(k for k, t in EDIT_TEMPLATES.items() if template in t)
