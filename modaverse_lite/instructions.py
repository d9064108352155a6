"""The instructions: every input→output pair of the paper, and the phrasings that ask for each (pure data).

A pair is named by its inputs and its output: ``"video+text->audio"`` (a clip and an instruction in, a sound out),
``"text->image"``, ``"image+text->text"``, ``"text->text"``. Each pair has ten or so template phrasings; the last
``HELD_OUT_PER_PAIR`` of each are never used in training and make the ``phrasing`` split, which asks whether the
model understood the request or memorised its wording.

Placeholders: ``{caption}`` (a world caption or a teacher's caption), ``{direction}`` (left/right/up/down).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import world

#: The version of the world dataset's recipe (pairs, templates, builder): part of the default dataset's folder name.
RECIPE_VERSION = 2
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

#: Every phrasing of every pair, the held-out ones included (see ``HELD_OUT``).
TEMPLATES: dict[str, list[str]] = {
    **{pair_name([m], "text"): list(t) for m, t in _X_TO_TEXT.items()},
    **{pair_name([], m): list(t) for m, t in _TEXT_TO_X.items()},
    **{pair_name([x], y): list(t) for (x, y), t in _X_TO_Y.items()},
    pair_name([], "text"): [p for q in QUESTIONS for p in q.phrasings],
}
#: The phrasings of each pair used only by the "phrasing" split.
HELD_OUT: dict[str, tuple[str, ...]] = {
    **{pair: tuple(t[-HELD_OUT_PER_PAIR:]) for pair, t in TEMPLATES.items() if pair != "text->text"},
    "text->text": tuple(q.phrasings[-1] for q in QUESTIONS),
}


def train_templates(pair: str) -> list[str]:
    """The phrasings of ``pair`` that train/val/test/unseen records use."""
    return [t for t in TEMPLATES[pair] if t not in HELD_OUT[pair]]
