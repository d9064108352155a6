"""What the notebooks show: figures whose captions can be read, answers marked ✓ / ✗ against their targets."""

from types import SimpleNamespace

from matplotlib.backends.backend_agg import FigureCanvasAgg

from modaverse_lite import plots, world


def test_image_grid_captions_are_not_covered_by_the_next_row():
    samples = world.generate("image", 12, seed=0, split="all")
    fig = plots.image_grid([s.data for s in samples], [s.caption for s in samples], title="a title")
    canvas = FigureCanvasAgg(fig)  # the figure comes closed in pyplot, without a canvas that draws
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = fig.axes
    cols = 6
    for i, ax in enumerate(axes[:-cols]):  # every caption with a row below it
        label = ax.xaxis.label.get_window_extent(renderer)
        below = axes[i + cols].get_window_extent(renderer)
        assert label.y0 >= below.y1, f"caption {i} ({ax.get_xlabel()!r}) runs into the image below it"
    title = fig._suptitle.get_window_extent(renderer)
    assert all(title.y0 >= ax.get_window_extent(renderer).y1 for ax in axes[:cols])


def _record(modality, prompt, split="val", pair="text->image"):
    target = SimpleNamespace(modality=modality, prompt=prompt)
    return SimpleNamespace(split=split, pair=pair, instruction="Draw it.", inputs=[], target=target,
                           response=lambda: f"Modality: [{modality.upper()}] Prompt: {prompt}")


def test_answer_rows_mark_routing_and_exact_answers():
    records = [_record("image", "a red circle")] * 3
    answers = ["Modality: [IMAGE] Prompt: a red circle", "Modality: [IMAGE] Prompt: a red square",
               "Modality: [AUDIO] Prompt: a high sine tone"]
    rows = plots.answer_rows(records, answers, root=".")
    assert [(r["routing"], r["exact"]) for r in rows] == [("✓", "✓"), ("✓", "✗"), ("✗", "✗")]
    assert rows[1]["answer"] == answers[1] and rows[1]["target"] == "Modality: [IMAGE] Prompt: a red circle"
    table = plots.answer_table(records, answers, root=".", caption="answers")
    assert table.count("✓") == 3 and table.count("✗") == 3 and "<b>answers</b>" in table
