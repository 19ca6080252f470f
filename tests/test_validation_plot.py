"""validation.png (training/validation_plot.py): the selected point is drawn where metrics.json puts it,
the file is a PNG, and drawing it never imports pyplot (so never switches a notebook's backend)."""

from __future__ import annotations

import io
import subprocess
import sys

from isoadapt.training.validation_plot import draw_curve, validation_png

CURVE = [
    {"step": 0, "epoch": 0.0, "ndcg@10": 0.40},
    {"step": 5, "epoch": 0.5, "ndcg@10": 0.47},
    {"step": 10, "epoch": 1.0, "ndcg@10": 0.45},
]
VALIDATION = {"curve": CURVE, "start": 0.40, "selected": CURVE[1], "stopped_early": False}


def test_the_dot_is_the_selected_point_on_its_step_or_its_epoch():
    from matplotlib.figure import Figure

    for x in ("step", "epoch"):
        ax = Figure().subplots()
        line = draw_curve(ax, CURVE, CURVE[1], x=x)
        assert [tuple(p) for p in line.get_xydata()] == [(p[x], p["ndcg@10"]) for p in CURVE]
        assert [tuple(p) for p in ax.lines[-1].get_xydata()] == [(CURVE[1][x], 0.47)]
        assert ax.lines[-1].get_color() == line.get_color()


def test_validation_png_is_a_png():
    from PIL import Image

    with Image.open(io.BytesIO(validation_png(VALIDATION))) as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] > 300


def test_drawing_it_never_imports_pyplot():
    code = (
        "import sys\n"
        "from isoadapt.training.validation_plot import validation_png\n"
        f"validation_png({VALIDATION!r})\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
