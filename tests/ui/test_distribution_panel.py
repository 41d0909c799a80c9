"""DistributionPanel: histogram of a parameter's values with its initializer's density over it,
the KS goodness of fit, point masses, Orthogonal by its singular values, and words (not an
empty plot) for deferred and uninitialized parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

import app
from app.document import Document, fileformat
from app.ui.distribution_panel import DistributionPanel, format_p, plot_colors
from app.ui.workbench import Workbench

EXAMPLES = Path(app.__file__).resolve().parent.parent / "resources" / "examples"

W0, B0 = "sequential0_dense0_weight", "sequential0_dense0_bias"

WRONG_PLUGIN = '''
import numpy as np

from app.engine import init, nd
from app.pluginhost import hookimpl


class ClaimsNormal(init.Initializer):
    """Draws U(5, 10) but claims its values follow N(0, 1)."""

    def _init_weight(self, name, arr):
        nd.random.uniform(5.0, 10.0, out=arr)

    def density(self, x, shape):
        x = np.asarray(x, dtype=float)
        return np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)


@hookimpl
def paramlab_register_initializers(register):
    register(ClaimsNormal, label="Claims N(0, 1)")
'''


def run(wb, text, fn):
    ok, result = wb.run(text, fn)
    assert ok, result
    return result


def dense_workbench(host, units=64, input_shape=(8, 32), init=("uniform", {"scale": 0.07}),
                    layers=1, forward=True):
    wb = Workbench(host, Document(host=host))
    for _ in range(layers):
        run(wb, "Add", lambda d: d.add_layer("Dense", {"units": units}))
    run(wb, "Input", lambda d: d.set_input(shape=input_shape))
    run(wb, "Init", lambda d: d.set_global_init(*init))
    run(wb, "Initialize", lambda d: d.initialize())
    if forward:
        run(wb, "Forward", lambda d: d.forward())
    return wb


def make_panel(qtbot, wb, name=None) -> DistributionPanel:
    panel = DistributionPanel(wb)
    qtbot.addWidget(panel)
    panel.resize(640, 440)
    panel.show()
    if name is not None:
        panel.show_param(name)
    panel.flush()
    return panel


def values_of(wb, name):
    return wb.doc.params()[name].data().asnumpy()


def test_histogram_counts_equal_numpys(qtbot, host):
    wb = dense_workbench(host)
    panel = make_panel(qtbot, wb, W0)
    assert panel.objectName() == "distributionPanel"
    assert panel.mode == "histogram"
    heights = np.asarray(panel.bars.opts["height"])
    x0 = np.asarray(panel.bars.opts["x0"])
    x1 = np.asarray(panel.bars.opts["x1"])
    values = values_of(wb, W0).astype(np.float64).ravel()
    ref, ref_edges = np.histogram(values, bins=heights.size, range=(x0[0], x1[-1]))
    np.testing.assert_array_equal(heights, ref)
    np.testing.assert_allclose(x0, ref_edges[:-1])
    np.testing.assert_allclose(x1, ref_edges[1:])
    assert heights.sum() == values.size == 64 * 32
    # the range is the values' own
    assert x0[0] == values.min() and x1[-1] == values.max()


def test_density_curve_is_the_uniform_formula_scaled_to_counts(qtbot, host):
    wb = dense_workbench(host)
    panel = make_panel(qtbot, wb, W0)
    xs, ys = panel.density_curve.getData()
    n = values_of(wb, W0).size
    width = float(panel.edges[1] - panel.edges[0])
    expected = 1.0 / 0.14 * n * width
    inside = np.abs(xs) <= 0.07 * (1 - 1e-6)
    outside = np.abs(xs) > 0.07 * (1 + 1e-6)
    assert inside.sum() > 100 and (xs < -0.07).any() and (xs > 0.07).any()
    np.testing.assert_allclose(ys[inside], expected, rtol=1e-12)
    np.testing.assert_array_equal(ys[outside], 0.0)
    # a few points by hand
    for x in (-0.05, 0.0, 0.031):
        i = int(np.argmin(np.abs(xs - x)))
        assert ys[i] == pytest.approx(expected)


@pytest.mark.parametrize("init", [("uniform", {"scale": 0.07}), ("xavier", {})])
def test_ks_fits_a_fresh_draw_and_rejects_a_scaled_copy(qtbot, host, init):
    wb = dense_workbench(host, init=init)
    panel = make_panel(qtbot, wb, W0)
    d, p, n = panel.ks
    assert n == 64 * 32
    assert p > 0.05, (d, p)
    assert panel.verdict == "good"
    assert panel.fit_label.text().startswith(f"KS D = {d:.4f}, p = {format_p(p)} (n = 2,048)")
    colors = plot_colors(panel.palette())
    assert colors["good"].name() in panel.fit_label.styleSheet()
    assert panel.note.isHidden()

    scaled = values_of(wb, W0) * 1.5
    run(wb, "Set data", lambda doc: doc.set_param_data(W0, scaled))
    panel.flush()
    d2, p2, _n = panel.ks
    assert p2 < 1e-3
    assert panel.verdict == "bad"
    assert colors["bad"].name() in panel.fit_label.styleSheet()
    assert "Changed since initialization (set_data)" in panel.note.text()
    assert "initial draw" in panel.note.text()


def test_a_plugin_whose_draws_miss_its_claimed_density_shows_red(qtbot, tmp_path, make_host):
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    (plugin_dir / "claims_normal.py").write_text(WRONG_PLUGIN)
    host = make_host(plugin_dir)
    assert "claimsnormal" in host.initializers, host.failures
    wb = dense_workbench(host, units=32, init=("claimsnormal", {}))
    values = values_of(wb, W0)
    assert values.min() >= 5.0 and values.max() <= 10.0
    panel = make_panel(qtbot, wb, W0)
    d, p, n = panel.ks
    assert p < 1e-3 and d > 0.9
    assert panel.verdict == "bad"
    assert panel.fit_label.property("verdict") == "bad"
    assert plot_colors(panel.palette())["bad"].name() in panel.fit_label.styleSheet()
    assert "ClaimsNormal (plugin density)" in panel.fit_label.text()
    assert "of its mass where the values are" in panel.note.text()


def test_orthogonal_is_checked_by_its_singular_values(qtbot, host):
    wb = dense_workbench(host, units=16, input_shape=(16, 32), init=("orthogonal", {}))
    panel = make_panel(qtbot, wb, W0)
    assert panel.mode == "orthogonal"
    scale = 1.414
    _x, sv = panel.sv_item.getData()
    assert sv.size == 16
    np.testing.assert_allclose(sv, np.linalg.svd(values_of(wb, W0).astype(np.float64),
                                                 compute_uv=False))
    assert np.max(np.abs(sv - scale)) < 1e-5
    assert panel.max_deviation < 1e-5
    assert panel.scale_line.value() == pytest.approx(scale)
    assert panel.verdict == "good"
    assert "16 singular values vs scale 1.414" in panel.fit_label.text()


def test_point_mass_matches_then_says_what_no_longer_does(qtbot, host):
    wb = Workbench(host, fileformat.load(EXAMPLES / "chapter_mlp.json", host))
    run(wb, "Initialize", lambda d: d.initialize())
    run(wb, "Forward", lambda d: d.forward())
    panel = make_panel(qtbot, wb, B0)
    assert panel.mode == "point"
    assert panel.point_line.value() == 0.0
    assert panel.fit_label.text() == "all 4 values equal 0: matches zeros"
    assert panel.verdict == "good"
    run(wb, "Backward", lambda d: d.backward())
    run(wb, "Step", lambda d: d.step())
    panel.flush()
    bias = values_of(wb, B0)
    off = int(np.count_nonzero(bias))
    assert off > 0
    assert panel.fit_label.text().startswith(f"{off} of 4 values ({off / 4:.1%}) differ from 0")
    assert panel.verdict == "bad"
    assert "Changed since initialization (1 step)" in panel.note.text()
    wb.undo_stack.undo()                        # back to the draw: matches again
    panel.flush()
    assert panel.fit_label.text() == "all 4 values equal 0: matches zeros"
    assert panel.note.isHidden()


def test_deferred_and_uninitialized_are_explained_in_words(qtbot, host):
    wb = Workbench(host, fileformat.load(EXAMPLES / "chapter_mlp.json", host))
    panel = make_panel(qtbot, wb, W0)
    assert panel.mode == "message" and panel.stack.currentIndex() == 0
    assert "no values yet" in panel.message.text()
    assert panel.forward_button.isHidden()

    run(wb, "Initialize", lambda d: d.initialize())
    panel.flush()
    assert panel.mode == "message"
    assert "(4, ?)" in panel.message.text() and "first forward pass" in panel.message.text()
    assert panel.forward_button.isVisible()

    qtbot.mouseClick(panel.forward_button, Qt.MouseButton.LeftButton)
    panel.flush()
    assert wb.doc.params()[W0].state == "initialized"
    assert wb.undo_stack.undoText() == "Forward"
    assert panel.mode == "histogram" and panel.stack.currentIndex() == 1
    assert panel.ks is not None and panel.ks[2] == 20


def test_follows_the_selection_and_the_combo_selects(qtbot, host):
    wb = Workbench(host, fileformat.load(EXAMPLES / "chapter_mlp.json", host))
    run(wb, "Initialize", lambda d: d.initialize())
    run(wb, "Forward", lambda d: d.forward())
    panel = make_panel(qtbot, wb)
    wb.select(("layer", "L2"))
    assert panel.param_name == "sequential0_dense1_weight"
    assert panel.combo.currentData() == "sequential0_dense1_weight"
    wb.select(("param", B0))
    assert panel.param_name == B0 and panel.mode == "point"
    index = panel.combo.findData(W0)
    panel.combo.setCurrentIndex(index)
    panel.combo.activated.emit(index)
    assert wb.selection == ("param", W0)
    assert panel.param_name == W0 and panel.mode == "histogram"


def test_exports_png_and_svg_from_the_context_menu_action(qtbot, host, tmp_path):
    wb = dense_workbench(host)
    panel = make_panel(qtbot, wb, W0)
    assert panel.plot_widget.scene().contextMenu == [panel.export_action]
    assert panel.export_action.text() == "Export…"
    png = panel.export(tmp_path / "hist.png")
    svg = panel.export(tmp_path / "hist.svg")
    assert png.stat().st_size > 1000
    text = svg.read_text()
    assert "<svg" in text and "</svg>" in text


def test_renders_on_a_dark_palette(qtbot, host, qapp):
    from app.ui import style
    wb = dense_workbench(host)
    panel = make_panel(qtbot, wb, W0)
    panel.setPalette(style.palette_for("dark"))
    panel.flush()
    colors = plot_colors(panel.palette())
    assert colors["dark"]
    assert panel.plot_widget.backgroundBrush().color() == colors["bg"]
    assert colors["good"].name() in panel.fit_label.styleSheet()


def test_a_large_orthogonal_weight_is_checked_on_a_sample_of_its_rows(qtbot, host):
    wb = dense_workbench(host, units=300, input_shape=(4, 320), init=("orthogonal",
                                                                      {"scale": 0.5}))
    panel = make_panel(qtbot, wb, W0)
    _x, sv = panel.sv_item.getData()
    assert sv.size == 256
    assert np.max(np.abs(sv - 0.5)) < 1e-5 and panel.verdict == "good"
    assert "a fixed random 256 of the 300 rows" in panel.fit_label.text()
    # after a scaled set_data the rows are no longer orthonormal at that scale
    run(wb, "Set data", lambda d: d.set_param_data(W0, values_of(wb, W0) * 1.1))
    panel.flush()
    assert panel.max_deviation == pytest.approx(0.05, rel=1e-4)
    assert panel.verdict == "bad"
