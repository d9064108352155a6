"""What the notebooks show: matplotlib figures, inline media and small HTML tables.

Every figure function returns a ``matplotlib.figure.Figure``, already closed in pyplot, so a notebook shows it
once: as the cell's value or with ``display(fig)``; a script can ``fig.savefig(...)``. The HTML helpers return
strings for ``IPython.display.HTML``. Media come as arrays (``world.Sample.data``) or as file paths.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from . import media, world
from .evaluate import marks

SPLIT_COLOURS = {"train": "#4C72B0", "val": "#55A868", "test": "#8172B2", "unseen": "#C44E52",
                 "phrasing": "#DD8452"}


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _done(fig):
    """Close the figure in pyplot (no second copy from the inline backend) and return it."""
    _pyplot().close(fig)
    return fig


def _as_image(item) -> np.ndarray:
    return media.load_image(item) if isinstance(item, (str, os.PathLike)) else np.asarray(item)


def _as_video(item, frames: int = world.VIDEO_FRAMES) -> np.ndarray:
    return media.load_video(item, frames=frames) if isinstance(item, (str, os.PathLike)) else np.asarray(item)


def _as_audio(item, sample_rate: int) -> np.ndarray:
    return media.load_audio(item, sample_rate) if isinstance(item, (str, os.PathLike)) else np.asarray(item)


def _grid(n: int, cols: int, size: float, height: float | None = None, layout: str | None = None):
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    fig, axes = _pyplot().subplots(rows, cols, figsize=(cols * size, rows * (height or size)), squeeze=False,
                                   layout=layout)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


# ---- images, sounds, clips ---------------------------------------------------------------------------------
def image_grid(images: Sequence, captions: Sequence[str] | None = None, cols: int = 6, size: float = 1.8,
               title: str | None = None):
    """Images (arrays or paths) in a grid, each with its caption underneath."""
    images = list(images)
    # constrained layout makes room for every caption: tight_layout let a row's images cover the captions above
    fig, axes = _grid(len(images), cols, size, size * 1.2, layout="constrained")
    for i, (ax, img) in enumerate(zip(axes, images)):
        ax.imshow(_as_image(img), interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        if captions is not None:
            ax.set_xlabel(captions[i], fontsize=8)
    if title:
        fig.suptitle(title)
    return _done(fig)


def _show_spectrogram(ax, audio: np.ndarray, sample_rate: int, caption: str | None):
    import librosa
    import librosa.display

    mel = librosa.feature.melspectrogram(y=np.asarray(audio, dtype=np.float32), sr=sample_rate, n_fft=1024,
                                         hop_length=256, n_mels=64, fmax=sample_rate // 2)
    image = librosa.display.specshow(librosa.power_to_db(mel, ref=np.max), sr=sample_rate, hop_length=256,
                                     x_axis="time", y_axis="mel", fmax=sample_rate // 2, ax=ax, cmap="magma")
    if caption:
        ax.set_title(caption, fontsize=9)
    return image


def spectrogram(audio, sample_rate: int = world.SAMPLE_RATE, caption: str | None = None):
    """A sound's mel spectrogram (dB) with librosa.display: pitch is height, timbre the harmonics above."""
    fig, ax = _pyplot().subplots(figsize=(5, 3))
    image = _show_spectrogram(ax, _as_audio(audio, sample_rate), sample_rate, caption)
    fig.colorbar(image, ax=ax, format="%+2.0f dB")
    fig.tight_layout()
    return _done(fig)


def spectrograms(sounds: Sequence, captions: Sequence[str] | None = None,
                 sample_rate: int = world.SAMPLE_RATE, cols: int = 3):
    """Mel spectrograms of several sounds side by side (shared colour scale: dB below each one's peak)."""
    sounds = list(sounds)
    fig, axes = _grid(len(sounds), cols, 3.6, 2.8)
    for i, (ax, sound) in enumerate(zip(axes, sounds)):
        _show_spectrogram(ax, _as_audio(sound, sample_rate), sample_rate, captions[i] if captions else None)
        if i % cols:
            ax.set_ylabel("")
    fig.tight_layout()
    return _done(fig)


def video_strip(clips, captions: Sequence[str] | None = None, frame_captions: Sequence[str] | None = None,
                size: float = 1.4):
    """Clips (``(T, H, W, 3)`` arrays or paths) as rows of frames, first to last; one clip or a list of them.

    ``captions`` label the rows; ``frame_captions`` (one clip only) label each frame, e.g. where the shape is.
    """
    if isinstance(clips, (str, os.PathLike)) or (isinstance(clips, np.ndarray) and clips.ndim == 4):
        clips = [clips]
    clips = [_as_video(c) for c in clips]
    frames = max(len(c) for c in clips)
    fig, axes = _pyplot().subplots(len(clips), frames, figsize=(frames * size, len(clips) * size * 1.2),
                                   squeeze=False)
    for r, clip in enumerate(clips):
        for t in range(frames):
            ax = axes[r, t]
            ax.set_xticks([]), ax.set_yticks([])
            if t >= len(clip):
                ax.axis("off")
                continue
            ax.imshow(clip[t], interpolation="nearest")
            if r == 0:
                ax.set_title(f"t={t}", fontsize=8)
            if frame_captions is not None and len(clips) == 1:
                ax.set_xlabel(frame_captions[t].split(" at the ")[-1], fontsize=7)
        if captions is not None:
            axes[r, 0].set_ylabel(captions[r], fontsize=8, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return _done(fig)


def animation(clip, fps: int = 8, width: int = 192) -> bytes:
    """A clip (array or path) as looping GIF bytes, enlarged to ``width`` pixels without blurring.

    Show it with ``IPython.display.Image(data=animation(clip))`` or inside HTML with ``animation_html``.
    """
    from PIL import Image

    frames = [Image.fromarray(f) for f in _as_video(clip)]
    scale = max(1, round(width / frames[0].width))
    frames = [f.resize((f.width * scale, f.height * scale), Image.NEAREST) for f in frames]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=1000 / fps, loop=0)
    return buffer.getvalue()


def animation_html(clip, fps: int = 8, width: int = 192, caption: str | None = None) -> str:
    """An ``<img>`` of the looping GIF (with an optional caption), for ``IPython.display.HTML``."""
    data = base64.b64encode(animation(clip, fps, width)).decode()
    tag = f'<img src="data:image/gif;base64,{data}" width="{width}" style="image-rendering: pixelated">'
    if caption is None:
        return tag
    return (f'<figure style="display:inline-block;margin:4px">{tag}'
            f'<figcaption>{html.escape(caption)}</figcaption></figure>')


def media_html(item, modality: str, width: int = 96, sample_rate: int = world.SAMPLE_RATE) -> str:
    """A medium (array or path) as inline HTML: an image, a playable ``<audio>`` or an animated GIF."""
    from PIL import Image

    if modality == "image":
        buffer = io.BytesIO()
        img = Image.fromarray(_as_image(item))
        scale = max(1, round(width / img.width))
        img.resize((img.width * scale, img.height * scale), Image.NEAREST).save(buffer, format="PNG")
        data = base64.b64encode(buffer.getvalue()).decode()
        return f'<img src="data:image/png;base64,{data}" width="{width}" style="image-rendering: pixelated">'
    if modality == "audio":
        import soundfile as sf

        buffer = io.BytesIO()
        sf.write(buffer, _as_audio(item, sample_rate), sample_rate, format="WAV", subtype="PCM_16")
        data = base64.b64encode(buffer.getvalue()).decode()
        style = f"width:{max(width, 160)}px"
        return f'<audio controls src="data:audio/wav;base64,{data}" style="{style}"></audio>'
    if modality == "video":
        return animation_html(item, width=width)
    raise ValueError(f"unknown modality {modality!r}; expected one of {world.MODALITIES}")


def input_html(record, root: str | os.PathLike, width: int = 64) -> str:
    """A dataset record's input medium (under dataset folder ``root``) as inline HTML; "" for a text-only record."""
    if not record.inputs:
        return ""
    modality = record.inputs[0]
    return media_html(record.media_path(root, modality), modality, width)


def target_html(record, width: int = 64, seed: int = 0) -> str:
    """What a world renderer draws from a record's target prompt, as inline HTML; "" for a text target or a
    prompt that is not a world caption."""
    if record.target.modality == "text":
        return ""
    attributes = world.attributes_of(record.target.prompt, record.target.modality)
    if attributes is None:
        return ""
    return media_html(world.render(record.target.modality, attributes, seed=seed).data, record.target.modality, width)


def answer_rows(records, answers: Sequence[str], root: str | os.PathLike, width: int = 64) -> list[dict]:
    """Table rows of dataset records beside the model's answers, each marked ✓ / ✗ against the record's target
    (``evaluate.marks``: routing, and exact flag and prompt), with the input medium inline."""
    return [{"split": r.split, "pair": r.pair, "input": input_html(r, root, width), "instruction": r.instruction,
             "target": r.response(), "answer": a, **marks(r.target.modality, r.target.prompt, a)}
            for r, a in zip(records, answers)]


def answer_table(records, answers: Sequence[str], root: str | os.PathLike, width: int = 64,
                 caption: str | None = None) -> str:
    """``answer_rows`` as an HTML table, for ``IPython.display.HTML``."""
    return html_table(answer_rows(records, answers, root, width), html_columns=["input"], caption=caption)


# ---- the dataset -------------------------------------------------------------------------------------------
def _pair_split_counts(records) -> dict[str, Counter]:
    if isinstance(records, dict):  # already {split: {pair: n}}
        return {s: Counter(c) for s, c in records.items()}
    counts: dict[str, Counter] = {}
    for r in records:
        pair, split = (r["pair"], r["split"]) if isinstance(r, dict) else (r.pair, r.split)
        counts.setdefault(split, Counter())[pair] += 1
    return counts


def pair_histogram(records, title: str | None = None):
    """Records per input→output pair, stacked by split (records, dicts, or ``{split: {pair: count}}``)."""
    counts = _pair_split_counts(records)
    splits = [s for s in SPLIT_COLOURS if s in counts] + sorted(set(counts) - set(SPLIT_COLOURS))
    pairs = sorted({p for c in counts.values() for p in c},
                   key=lambda p: (p.count("+"), p.split("->")[-1], p))  # text->X, then X->Y, then X->text
    fig, ax = _pyplot().subplots(figsize=(8, 0.32 * len(pairs) + 1.2))
    left = np.zeros(len(pairs))
    y = np.arange(len(pairs))
    for split in splits:
        values = np.array([counts[split].get(p, 0) for p in pairs], dtype=float)
        ax.barh(y, values, left=left, color=SPLIT_COLOURS.get(split), label=split)
        left += values
    ax.set_yticks(y, pairs, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("records")
    ax.legend(loc="lower right", fontsize=8, ncols=len(splits))
    ax.set_title(title or f"{int(left.sum())} records: every pair in every split")
    fig.tight_layout()
    return _done(fig)


# ---- training ----------------------------------------------------------------------------------------------
def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    head = np.array([values[: i + 1].mean() for i in range(window - 1)])
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


def loss_curve(history: Iterable[tuple[int, float]], evals: Sequence[dict] | None = None,
               smooth: int | None = None, title: str | None = None):
    """Training loss per step (faint: raw; solid: moving average), and the periodic evaluation's routing and
    exact-match accuracy on a second axis."""
    from matplotlib.ticker import MaxNLocator

    history = list(history)
    steps = np.array([s for s, _ in history], dtype=float)
    losses = np.array([v for _, v in history], dtype=float)
    fig, ax = _pyplot().subplots(figsize=(8, 3.6))
    window = smooth or max(1, len(losses) // 40)
    if window > 1:
        ax.plot(steps, losses, color="#4C72B0", alpha=0.25, lw=0.8, label="loss")
        ax.plot(steps, _moving_average(losses, window), color="#4C72B0", lw=1.8,
                label=f"loss ({window}-step mean)")
    else:
        ax.plot(steps, losses, color="#4C72B0", lw=1.8, label="loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel("loss (target tokens)")
    if len(losses) and losses.min() > 0 and losses.max() / losses.min() > 30:
        ax.set_yscale("log")
    handles, labels = ax.get_legend_handles_labels()
    if evals:
        twin = ax.twinx()
        at = [e["step"] for e in evals]
        for key, colour, marker in (("routing", "#55A868", "o"), ("exact", "#C44E52", "s")):
            twin.plot(at, [e[key] for e in evals], color=colour, marker=marker, lw=1.2, label=f"eval {key}")
        twin.set_ylim(-0.03, 1.03)
        twin.set_ylabel("accuracy (periodic eval)")
        more_h, more_l = twin.get_legend_handles_labels()
        handles, labels = handles + more_h, labels + more_l
    ax.legend(handles, labels, loc="center right", fontsize=8)
    ax.set_title(title or "align_train: one stage, meta-response tokens only")
    fig.tight_layout()
    return _done(fig)


# ---- tables ------------------------------------------------------------------------------------------------
def _cell(value, raw: bool, digits: int) -> str:
    if raw:
        return str(value)
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return html.escape(str(value))


def html_table(rows: Sequence[dict], columns: Sequence[str] | None = None, html_columns: Sequence[str] = (),
               digits: int = 3, caption: str | None = None) -> str:
    """A list of dicts as an HTML table for ``IPython.display.HTML`` (no pandas needed).

    ``columns`` picks and orders columns (default: every key, in first-seen order); values of ``html_columns``
    are inserted as HTML (media from ``media_html``), everything else is escaped. Floats get ``digits``
    decimals, integers thousands separators, None a dash.
    """
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    raw = set(html_columns)
    style = "border-collapse:collapse;font-size:0.9em"
    cell = 'style="border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:middle"'
    out = [f'<table style="{style}">']
    if caption:
        out.append('<caption style="caption-side:top;text-align:left">'
                   f'<b>{html.escape(caption)}</b></caption>')
    out.append("<tr>" + "".join(f"<th {cell}>{html.escape(str(c))}</th>" for c in columns) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td {cell}>{_cell(row.get(c), c in raw, digits)}</td>" for c in columns)
                   + "</tr>")
    out.append("</table>")
    return "\n".join(out)


# ---- the alignment families, compared --------------------------------------------------------------------------
_AXES = {"train_seconds": ("training seconds (evaluation excluded)", False),
         "trainable_parameters": ("trainable parameters", True)}


def comparison_plot(result: dict, x: str = "train_seconds", y: str = "val_exact", title: str | None = None):
    """One point per method of a ``compare.run`` result at its best learning rate: mean over seeds of ``y``
    (held-out exact by default) against ``x`` (``"train_seconds"`` or ``"trainable_parameters"``), with a bar down
    to the worst seed; faint points are the other rates of its sweep."""
    if x not in _AXES:
        raise ValueError(f"x must be one of {sorted(_AXES)}, got {x!r}")
    label, log = _AXES[x]
    fig, ax = _pyplot().subplots(figsize=(6.5, 4))
    colours = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    for i, m in enumerate(result["methods"]):
        colour = colours[i % len(colours)]

        def where(s, m=m):
            return m["trainable_parameters"] if x == "trainable_parameters" else s["train_seconds"]

        others = [s for s in m["sweep"] if s["lr"] != m["best_lr"] and s[y] is not None]
        ax.scatter([where(s) for s in others], [s[y] for s in others], color=colour, alpha=0.3, s=18)
        b = m["best"]
        if b[y] is None:
            continue
        low = b[y] - b[f"{y}_worst"] if b.get(f"{y}_worst") is not None else 0.0
        ax.errorbar([where(b)], [b[y]], yerr=[[low], [0.0]], fmt="o", color=colour, capsize=3,
                    label=f"{m['name']} ({m['family']})")
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel(f"{y.replace('val', 'held-out').replace('_', ' ')} (mean; bar: worst seed)")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or f"best learning rate of each method against {label}")
    fig.tight_layout()
    return _done(fig)


# ---- the paper's claim (notebook 05) -----------------------------------------------------------------------------
_GROUP_LABELS = {"input": "input projection", "tokens": "new-token rows", "lora": "LoRA",
                 "output": "output projections"}


def schedule_diagram(arms: Sequence[tuple[str, Sequence]], title: str | None = None):
    """What trains in each stage of each arm: one row per arm, one box per stage (its data, steps and trainable
    groups), left to right in training order. ``arms``: ``(name, stages)`` pairs (``claim.stages``)."""
    plt = _pyplot()
    width = max(len(stages) for _, stages in arms)
    fig, ax = plt.subplots(figsize=(3.1 * width + 1.6, 1.25 * len(arms) + 0.6))
    colours = {"captions": "#dbe9f6", "caption pairs": "#fde4c8", "instructions": "#d9f0d3"}
    for row, (name, stages) in enumerate(arms):
        y = len(arms) - 1 - row
        ax.text(-0.1, y + 0.4, name, ha="right", va="center", fontsize=10, fontweight="bold")
        for col, stage in enumerate(stages):
            ax.add_patch(plt.Rectangle((col * 1.05, y + 0.05), 1.0, 0.75, color=colours.get(stage.data, "#eee"),
                                       ec="#555"))
            trains = "\n".join(_GROUP_LABELS.get(g, g) for g in stage.trains)
            ax.text(col * 1.05 + 0.5, y + 0.43, f"{stage.name}\n{stage.data}, {stage.steps} steps\n{trains}",
                    ha="center", va="center", fontsize=7)
    ax.set_xlim(-1.2, width * 1.05)
    ax.set_ylim(-0.1, len(arms))
    ax.axis("off")
    ax.set_title(title or "what trains in each stage (left to right); colour: the stage's data", fontsize=10)
    fig.tight_layout()
    return _done(fig)


def claim_time_plot(result: dict, title: str | None = None):
    """Round trip against training seconds, every stage counted: each arm's periodic round trip (first seed, best
    rate). A three-stage arm's curve starts late: its first two stages run before any instruction is learnt."""
    fig, ax = _pyplot().subplots(figsize=(6.5, 4))
    for arm in result["arms"]:
        run = next(s for s in arm["sweep"] if s["lr"] == arm["best_lr"])["runs"][0]
        points = [(e["seconds"], e["roundtrip"]) for e in run["evals"] if e["roundtrip"] is not None]
        if points:
            ax.plot(*zip(*points), marker="o", label=f"{arm['name']} ({len(arm['stages'])} stage"
                                                     f"{'s' if len(arm['stages']) > 1 else ''})")
    ax.axhline(result["config"]["target"], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("training seconds (all stages)")
    ax.set_ylabel("round trip, held-out media")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or "accuracy against training time (first seed, best rate)")
    fig.tight_layout()
    return _done(fig)


def claim_data_plot(result: dict, title: str | None = None):
    """Final round trip against the data each arm trained on (every stage's items counted), one point per data
    cut: mean over seeds, the bar down to the worst seed."""
    fig, ax = _pyplot().subplots(figsize=(6.5, 4))
    for arm in result["arms"]:
        cuts = [d for d in arm["data"] if d["roundtrip"] is not None]
        if not cuts:
            continue
        xs, ys = [d["data"] for d in cuts], [d["roundtrip"] for d in cuts]
        low = [d["roundtrip"] - (d["roundtrip_worst"] if d["roundtrip_worst"] is not None else d["roundtrip"])
               for d in cuts]
        ax.errorbar(xs, ys, yerr=[low, [0.0] * len(cuts)], marker="o", capsize=3, label=arm["name"])
    ax.set_xscale("log")
    ax.set_xlabel("data items, all stages (log)")
    ax.set_ylabel("round trip, held-out media (mean; bar: worst seed)")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or "accuracy against data")
    fig.tight_layout()
    return _done(fig)
