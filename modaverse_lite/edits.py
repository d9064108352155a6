"""The demo requests' world rules: edits within a modality, two media in one request, two outputs in one answer.

The default pairs (``instructions.PAIRS``) turn one medium into words or into another medium by ``world.translate``.
The paper's demos ask for three more kinds, each answered here by a rule a student can check by hand:

* **edit** (``image+text->image``, ``audio+text->audio``, ``video+text->video``) — ``edit(modality, attributes,
  kind, value)``: recolour or reshape an image, change a tone's pitch or timbre, reverse a clip's motion, turn it a
  quarter turn clockwise (left → up → right → down → left) or tint it. "Make this red circle a square" → "a red
  square". The result may be a combination held out of training (``world.UNSEEN``): such records are ``unseen``.
* **two media** (``image+audio+text->video``, …) — ``combine(inputs, target, direction)``: words about both
  ("a red circle and a high sine tone"), or a clip made of both: the picture's colour with the sound's shape
  (image+audio), the picture's object on the clip's path (image+video), the clip in the sound's colour
  (audio+video). The model reads each medium in its own ``<Media> … </Media>`` block, in the pair's order.
* **two outputs** (``image+text->text+audio``, ``audio+text->text+image``, ``text->image+audio``) — ``outputs``:
  a caption and the medium ``world.translate`` makes of it, one meta-response segment each.

``demo_record`` builds one dataset record of any of these pairs; ``dataset.build_world_dataset(pairs="all")`` calls
it. This module never changes ``world.py`` (whose source names the tiny zoo's weights).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import world
from .instructions import DEMO_PAIRS, EDIT_KINDS, EDIT_PAIRS, EDIT_TEMPLATES, MODALITIES, held_out, phrasings
from .records import Record, Target

__all__ = ["CLOCKWISE", "DEMO_PAIRS", "OPPOSITE", "TWO_OUTPUTS", "combine", "demo_record", "edit", "edit_values",
           "involves_unseen", "outputs"]  # DEMO_PAIRS: instructions' list of the demo pairs, for the notebooks

#: A quarter turn clockwise on screen (y grows downwards): moving up becomes moving right.
CLOCKWISE = {"up": "right", "right": "down", "down": "left", "left": "up"}
OPPOSITE = {"up": "down", "down": "up", "left": "right", "right": "left"}
#: The media each two-output pair writes after its text (or first) segment, in order.
TWO_OUTPUTS = {"image+text->text+audio": ("text", "audio"), "audio+text->text+image": ("text", "image"),
               "text->image+audio": ("image", "audio")}


def edit(modality: str, attributes: dict[str, str], kind: str, value: str | None = None) -> dict[str, str]:
    """The attributes after an edit: ``edit("image", {"colour": "red", "shape": "circle"}, "reshape", "square")``
    → ``{"colour": "red", "shape": "square"}``. ``kind`` is a key of ``instructions.EDIT_KINDS``."""
    if kind not in EDIT_KINDS or EDIT_KINDS[kind][0] != modality:
        kinds = [k for k, (m, _) in EDIT_KINDS.items() if m == modality]
        raise ValueError(f"unknown {modality} edit {kind!r}; expected one of {kinds}")
    a = {k: attributes[k] for k in world.ATTRIBUTES[modality]}
    if kind == "reverse":
        a["direction"] = OPPOSITE[a["direction"]]
    elif kind == "turn":
        a["direction"] = CLOCKWISE[a["direction"]]
    else:
        name = EDIT_KINDS[kind][1]
        if value not in world.VALUES[name]:
            raise ValueError(f"a {kind} edit needs a {name}, one of {world.VALUES[name]}; got {value!r}")
        a[name] = value
    return a


def edit_values(modality: str, attributes: dict[str, str], kind: str) -> list[str | None]:
    """The values an edit of ``kind`` can take on ``attributes``: every value but the current one (None for an
    edit without a value)."""
    name = EDIT_KINDS[kind][1]
    return [None] if name is None else [v for v in world.VALUES[name] if v != attributes[name]]


def combine(inputs: dict[str, dict[str, str]], target: str, direction: str | None = None) -> dict[str, str] | str:
    """What two media make together: the answer's text (target "text"), or the attributes of the clip (target
    "video"). ``inputs`` maps each input modality to its world attributes."""
    kinds = tuple(m for m in MODALITIES if m in inputs)
    if len(kinds) != 2:
        raise ValueError(f"combine takes two media of different modalities, got {list(inputs)}")
    if target == "text":
        return " and ".join(world.caption(m, inputs[m]) for m in kinds)
    if target != "video":
        raise ValueError(f"two media combine into 'text' or 'video', not {target!r}")
    if kinds == ("image", "audio"):
        if direction not in world.DIRECTIONS:
            raise ValueError(f"a clip of a picture and a sound needs a direction, one of {world.DIRECTIONS}")
        return {"colour": inputs["image"]["colour"], "shape": world.SHAPE_OF_TIMBRE[inputs["audio"]["timbre"]],
                "direction": direction}
    if kinds == ("image", "video"):
        return {"colour": inputs["image"]["colour"], "shape": inputs["image"]["shape"],
                "direction": inputs["video"]["direction"]}
    return {"colour": world.COLOUR_OF_PITCH[inputs["audio"]["pitch"]], "shape": inputs["video"]["shape"],
            "direction": inputs["video"]["direction"]}


def outputs(pair: str, modality: str, attributes: dict[str, str]) -> list[tuple[str, str, dict[str, str]]]:
    """The segments of a two-output answer about one world object: ``(modality, prompt, attributes)`` each.
    ``modality`` / ``attributes`` describe the object (the input medium, or the caption of a text→X request)."""
    out = []
    for m in TWO_OUTPUTS[pair]:
        attrs = attributes if m in ("text", modality) else world.translate(modality, attributes, m)
        out.append((m, world.caption(modality if m == "text" else m, attrs), attrs))
    return out


def _unseen(modality: str, attributes: dict[str, str]) -> bool:
    return tuple(attributes[k] for k in world.ATTRIBUTES[modality]) in world.UNSEEN[modality]


_MEDIA_PART = {"train": "train", "val": "val", "test": "test", "phrasing": "test", "unseen": "unseen"}


def demo_record(pair: str, split: str, rng: np.random.Generator, pools: dict, cycler) -> Record:
    """One record of a demo pair for ``split`` (id left empty), from the dataset builder's media ``pools`` and
    ``cycler`` (``dataset._Pool`` / ``dataset._Cycler``).

    Outside the ``unseen`` split no object of the record (an input, a result, a segment) is a held-out combination;
    the ``unseen`` split holds records with one: an unseen input, or — for edits and clips made of two media — a
    seen input whose *result* is unseen.
    """
    held, unseen = split == "phrasing", split == "unseen"

    def template(options: Sequence[str]) -> str:
        chosen = [t for t in options if (t in held_out(pair)) == held]
        return chosen[int(rng.integers(len(chosen)))]

    media: dict[str, str | None] = {m: None for m in MODALITIES}
    inputs, target_side = pair.split("->")
    sources = inputs.split("+")[:-1]

    if pair in EDIT_PAIRS:
        m = sources[0]
        pool = pools[m]
        kinds = [k for k, (km, _) in EDIT_KINDS.items() if km == m]

        def options(kind: str) -> list[tuple[int, str | None]]:
            out = []
            parts = ("unseen", "test") if unseen else (_MEDIA_PART[split],)
            for part in parts:
                for i in pool.parts[part]:
                    a = pool.samples[i].attributes
                    for v in edit_values(m, a, kind):
                        if (_unseen(m, a) or _unseen(m, edit(m, a, kind, v))) == unseen:
                            out.append((i, v))
            return out

        # each kind as often as the others (a clip can be tinted five ways but turned only one)
        kind = cycler.take((pair, split), lambda: [k for k in kinds if cycler.under_way((pair, split, k))
                                                   or options(k)])
        index, value = cycler.take((pair, split, kind), lambda: options(kind))
        sample = pool.samples[index]
        pool.used.add(index)
        media[m] = pool.path(index)
        result = edit(m, sample.attributes, kind, value)
        name = EDIT_KINDS[kind][1]
        instruction = template(EDIT_TEMPLATES[kind]).format(**({name: value} if name else {}))
        return _record(split, pair, instruction, media, [(m, world.caption(m, result))],
                       {m: dict(sample.attributes), "target": result}, {m: sample.caption,
                                                                        "target": world.caption(m, result)})

    if len(sources) == 2:  # two media in
        target = target_side
        for _ in range(1000):
            which = int(rng.integers(2)) if unseen else -1  # the medium drawn from the unseen pool
            picked = {}
            for k, m in enumerate(sources):
                part = "unseen" if k == which else ("test" if unseen else _MEDIA_PART[split])
                picked[m] = cycler.take((pair, split, m, part), lambda m=m, part=part: list(pools[m].parts[part]))
            attrs = {m: pools[m].samples[i].attributes for m, i in picked.items()}
            direction = world.DIRECTIONS[int(rng.integers(4))] if sources == ["image", "audio"] else None
            answer = combine(attrs, target, direction)
            if unseen or target == "text" or not _unseen("video", answer):
                break
        for m, i in picked.items():
            pools[m].used.add(i)
            media[m] = pools[m].path(i)
        instruction = template(phrasings(pair)).format(direction=direction)
        attributes = {m: dict(a) for m, a in attrs.items()}
        captions = {m: world.caption(m, a) for m, a in attrs.items()}
        if target == "video":
            attributes["video" if "video" not in attrs else "target"] = answer
            captions["video" if "video" not in attrs else "target"] = world.caption("video", answer)
            answer = world.caption("video", answer)
        return _record(split, pair, instruction, media, [(target, answer)], attributes, captions)

    # two outputs: about one medium, or about the caption of a text request
    first = TWO_OUTPUTS[pair][0]
    if sources:
        m = sources[0]
        pool = pools[m]

        def fits() -> list[int]:
            return [i for i in pool.parts[_MEDIA_PART[split]]
                    if unseen or not any(m2 != "text" and _unseen(m2, world.translate(m, pool.samples[i].attributes,
                                                                                       m2))
                                         for m2 in TWO_OUTPUTS[pair])]

        index = cycler.take((pair, split), fits)
        pool.used.add(index)
        media[m] = pool.path(index)
        attrs = pool.samples[index].attributes
        instruction = template(phrasings(pair))
    else:
        m = first

        def combos() -> list[tuple[str, ...]]:
            out = []
            for c in world.combinations(m, "all"):
                a = dict(zip(world.ATTRIBUTES[m], c))
                bad = _unseen(m, a) or _unseen("audio", world.translate(m, a, "audio"))
                if bad == unseen:
                    out.append(c)
            return out

        attrs = dict(zip(world.ATTRIBUTES[m], cycler.take((pair, split), combos)))
        instruction = template(phrasings(pair)).format(caption=world.caption(m, attrs))
    segments = outputs(pair, m, attrs)
    attributes = {m: dict(attrs), **{s: a for s, _, a in segments if s != "text"}}
    captions = {k: world.caption(k, a) for k, a in attributes.items()}
    return _record(split, pair, instruction, media, [(s, p) for s, p, _ in segments], attributes, captions)


def _record(split: str, pair: str, instruction: str, media: dict, segments: list[tuple[str, str]],
            attributes: dict, captions: dict) -> Record:
    target = Target(segments[0][0], segments[0][1], tuple(segments[1:]))
    return Record("", split, pair, instruction, media, target, captions, attributes)


def involves_unseen(record: Record) -> bool:
    """Whether any world object of ``record`` is held out: an input, a target, or an edit's result ("target")."""
    for key, a in record.attributes.items():
        modality = record.target.modality if key == "target" else key
        if modality in MODALITIES and set(world.ATTRIBUTES[modality]) <= set(a) and _unseen(modality, a):
            return True
    return False
