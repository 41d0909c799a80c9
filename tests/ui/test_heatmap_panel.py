"""The heatmap panel: what is drawn is the parameter data (or its max-|value| pooling), B − A is
the arithmetic, scales are symmetric and shared, deferred parameters show placeholders that turn
into heatmaps after the forward, a shared parameter's per-use gradients add up to .grad(), and
filter, non-finite marks, hover, zoom and export work through the real widgets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication, QFileDialog

import app
from app.document import Document, analysis, fileformat
from app.engine import nd
from app.ui import heatmap_panel as hp
from app.ui.heatmap_panel import HeatmapPanel
from app.ui.timeline_panel import TimelinePanel
from app.ui.workbench import Workbench

EXAMPLES = Path(app.__file__).resolve().parent.parent / "resources" / "examples"

W0, B0 = "sequential0_dense0_weight", "sequential0_dense0_bias"
W1, B1 = "sequential0_dense1_weight", "sequential0_dense1_bias"


def open_example(name, host) -> Workbench:
    return Workbench(host, fileformat.load(EXAMPLES / name, host=host))


def make_panel(qtbot, wb, show=True) -> HeatmapPanel:
    panel = HeatmapPanel(wb)
    panel.set_fade_duration(0)
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    if show:
        panel.show()
    return panel


def image_of(panel, name, column):
    return np.asarray(panel.cell(name, column).image.image)


def pool_loops(m: np.ndarray, fy: int, fx: int) -> np.ndarray:
    """max-|value| pooling written out with plain loops: per block, the first NaN if any, else
    the first element of largest magnitude, sign kept."""
    rows, cols = m.shape
    out = np.empty(((rows + fy - 1) // fy, (cols + fx - 1) // fx), dtype=m.dtype)
    for bi in range(out.shape[0]):
        for bj in range(out.shape[1]):
            best = None
            for i in range(bi * fy, min(rows, (bi + 1) * fy)):
                for j in range(bj * fx, min(cols, (bj + 1) * fx)):
                    v = m[i, j]
                    if np.isnan(v):
                        best = v
                        break
                    if best is None or abs(v) > abs(best):
                        best = v
                if best is not None and np.isnan(best):
                    break
            out[bi, bj] = best
    return out


@pytest.fixture
def mlp(qapp, host):
    return open_example("chapter_mlp.json", host)


@pytest.fixture
def shared(qapp, host):
    return open_example("chapter_shared.json", host)


def big_workbench(host, units=400, in_units=500, seed=3):
    doc = Document(host=host)
    doc.add_layer("Dense", {"units": units, "in_units": in_units})
    doc.initialize()
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((units, in_units)).astype(np.float32)
    doc.params()[W0].set_data(nd.array(w))
    doc.record_snapshot("edited")
    return Workbench(host, doc), w


# ----------------------------------------------------------------------------- drawing
def test_drawn_images_equal_the_parameter_data(qtbot, mlp):
    doc = mlp.doc
    doc.initialize()
    doc.forward()
    panel = make_panel(qtbot, mlp)
    a, b = doc.history.default_pair()
    assert panel.pair() == (a, b)
    for name in (W0, W1):
        np.testing.assert_array_equal(image_of(panel, name, "B"), b.params[name].data)
        np.testing.assert_array_equal(image_of(panel, name, "B"),
                                      doc.params()[name].data().asnumpy())
    # a bias is a one-row strip
    np.testing.assert_array_equal(image_of(panel, B0, "B"), b.params[B0].data.reshape(1, -1))
    np.testing.assert_array_equal(image_of(panel, B0, "A"), a.params[B0].data.reshape(1, -1))
    # weight rows = output units, columns = inputs: the 4×5 weight is drawn 4 high, 5 wide
    rect = panel.cell(W0, "B").image.mapRectToParent(panel.cell(W0, "B").image.boundingRect())
    assert (rect.width(), rect.height()) == (5, 4)


def test_pooled_images_are_the_max_abs_reduction(qtbot, host):
    wb, w = big_workbench(host)
    w[5, 7] = np.nan
    w[100, 200] = np.inf
    w[300, 401] = -np.inf
    w[10, 10], w[10, 11] = -9.0, 9.0        # a ±tie inside one block: the first one wins
    wb.doc.params()[W0].set_data(nd.array(w))
    wb.doc.record_snapshot("non-finite")
    panel = make_panel(qtbot, wb)
    cell = panel.cell(W0, "B")
    fy, fx = cell.prepared.factors
    assert fy > 1 and fx > 1
    drawn = image_of(panel, W0, "B")
    expected = pool_loops(w, fy, fx)
    np.testing.assert_array_equal(drawn, expected)
    # ... and NumPy's reference implementation agrees
    ref, factors = analysis.pool_maxabs(w, *hp.display_caps(w.shape, False))
    assert factors == (fy, fx)
    np.testing.assert_array_equal(drawn, ref)
    assert "pooled" in cell._caption_html and f"{fy}×{fx}" in cell._caption_html
    # the non-finite values were counted in the original, not in the reduction
    assert cell.prepared.counts == (1, 1, 1)


@pytest.mark.parametrize("shape,caps", [((37, 1001), (7, 64)), ((512, 512), (100, 100)),
                                        ((4096, 3), (512, 512)), ((9, 9), (2, 4))])
def test_fast_pooling_matches_the_definition(shape, caps):
    rng = np.random.default_rng(sum(shape))
    m = rng.integers(-5, 6, size=shape).astype(np.float32)   # many exact ±ties
    m.flat[rng.integers(0, m.size, 3)] = np.nan
    pooled, factors = hp.pool_display(m, *caps)
    ref, ref_factors = analysis.pool_maxabs(m, *caps)
    assert factors == ref_factors
    np.testing.assert_array_equal(pooled, ref)
    if m.size <= 40000:
        np.testing.assert_array_equal(pooled, pool_loops(m, *factors))


def test_b_minus_a_is_the_arithmetic_and_the_scale_is_shared(qtbot, mlp):
    doc = mlp.doc
    doc.initialize()
    doc.forward()
    doc.backward()
    doc.step()
    panel = make_panel(qtbot, mlp)
    a, b = panel.pair()
    assert (a.label, b.label) == ("backward", "step")
    for name in (W0, B0, W1, B1):
        da, db = a.params[name].data, b.params[name].data
        diff = analysis.display_matrix(db) - analysis.display_matrix(da)
        np.testing.assert_array_equal(image_of(panel, name, "D"), diff)
        assert np.any(diff != 0)
        levels = [panel.cell(name, k).levels for k in "ABD"]
        assert levels[0] == levels[1] == levels[2]
        assert levels[0] == pytest.approx(analysis.symmetric_levels(da, db, diff))
        lo, hi = levels[0]
        assert lo == -hi and hi > 0
        for k in "ABD":     # the images and their colour bars use exactly those levels
            cell = panel.cell(name, k)
            assert tuple(cell.image.getLevels()) == pytest.approx(levels[0])
            assert tuple(cell.bar.levels()) == pytest.approx(levels[0])
        g = panel.cell(name, "G")
        np.testing.assert_array_equal(image_of(panel, name, "G"),
                                      analysis.display_matrix(b.params[name].grad))
        assert g.levels == pytest.approx(analysis.symmetric_levels(b.params[name].grad))
    # per-panel scales: each heatmap gets its own symmetric scale
    panel.set_per_panel_scales(True)
    da, db = a.params[W0].data, b.params[W0].data
    assert panel.cell(W0, "D").levels == pytest.approx(analysis.symmetric_levels(db - da))
    assert panel.cell(W0, "A").levels == pytest.approx(analysis.symmetric_levels(da))
    assert panel.cell(W0, "D").levels[1] < panel.cell(W0, "B").levels[1]


def test_constant_arrays_are_not_auto_levelled(qtbot, mlp):
    mlp.doc.initialize()
    mlp.doc.forward()
    panel = make_panel(qtbot, mlp)
    cell = panel.cell(B0, "B")          # biases start at zeros
    assert np.all(image_of(panel, B0, "B") == 0)
    assert cell.levels == (-1.0, 1.0)
    assert tuple(cell.image.getLevels()) == (-1.0, 1.0)
    assert "all 0" in cell._caption_html


# ----------------------------------------------------------------------------- deferred
def test_deferred_placeholders_then_heatmaps_after_the_forward(qtbot, mlp):
    doc = mlp.doc
    panel = make_panel(qtbot, mlp)
    doc.initialize()
    b = panel.cell(W0, "B")
    assert b.placeholder and b.prepared is None
    assert b.placeholder_text.isVisible() and not b.image.isVisible()
    assert "4 × ?" in b.placeholder_text.textItem.toPlainText()
    assert "2 × ?" in panel.cell(W1, "B").placeholder_text.textItem.toPlainText()
    assert "deferred" in b.placeholder_text.textItem.toPlainText()
    assert "4 × ?" in panel.row(W0).title.text()
    image_before = b.image
    doc.forward()
    b = panel.cell(W0, "B")
    assert b.image is image_before          # the same item, now with data
    assert not b.placeholder and b.image.isVisible() and not b.placeholder_text.isVisible()
    assert b.bar.isVisible() and b.bar.axis.minimumWidth() == 40     # its scale is readable
    np.testing.assert_array_equal(image_of(panel, W0, "B"),
                                  doc.params()[W0].data().asnumpy())
    assert image_of(panel, W0, "B").shape == (4, 5)
    assert "4 × ?" in panel.cell(W0, "A").placeholder_text.textItem.toPlainText()
    assert panel.cell(W0, "A").placeholder
    assert "4 × 5" in panel.row(W0).title.text()
    assert b.image.opacity() == 1.0


def test_the_forward_fades_the_heatmap_in(qtbot, mlp):
    doc = mlp.doc
    panel = make_panel(qtbot, mlp)
    panel.set_fade_duration(5000)
    qtbot.waitExposed(panel)
    doc.initialize()
    doc.forward()
    cell = panel.cell(W0, "B")
    assert cell._anim is not None and cell._anim.duration() == 5000
    assert cell._anim.state() == cell._anim.State.Running
    assert cell.image.opacity() < 1.0
    cell._anim.setCurrentTime(5000)     # jump to the end: fully opaque
    assert cell.image.opacity() == pytest.approx(1.0)
    cell._anim.stop()


# ----------------------------------------------------------------------------- sharing
def test_a_shared_parameter_appears_once_with_its_per_use_gradients(qtbot, shared):
    doc = shared.doc
    doc.initialize()
    doc.forward()
    doc.backward()
    panel = make_panel(qtbot, shared)
    names = [r.name for r in panel.rows()]
    assert names == list(doc.params())
    assert len(names) == len(set(names)) == 6
    title = panel.row(W1).title.text()
    assert W1 in title and "shared by 2 layers" in title
    assert "1: Dense(4, relu) (dense1)" in title and "2: Dense(4, relu) (dense2)" in title
    for name in (W1, B1):
        row = panel.row(name)
        assert row.columns == ["A", "B", "D", "G", "C0", "C1"]
        grad = doc.params()[name].grad().asnumpy()
        g = image_of(panel, name, "G")
        c0, c1 = image_of(panel, name, "C0"), image_of(panel, name, "C1")
        np.testing.assert_array_equal(g, analysis.display_matrix(grad))
        np.testing.assert_allclose(c0 + c1, g, rtol=1e-6, atol=1e-7)
        assert not np.allclose(c0, c1)
        assert "dense1" in panel.cell(name, "C0").title
        assert "dense2" in panel.cell(name, "C1").title
        # the sum and the contributions share one scale
        assert panel.cell(name, "G").levels == panel.cell(name, "C0").levels == \
            panel.cell(name, "C1").levels
    assert panel.row(W0).columns == ["A", "B", "D", "G"]     # not shared: no split
    # after the step, B's gradient is still the one the backward split
    doc.step()
    assert panel.row(W1).columns == ["A", "B", "D", "G", "C0", "C1"]
    assert panel.pair()[1].label == "step"


# ----------------------------------------------------------------------------- filter
def test_the_regex_filter_matches_like_collect_params(qtbot, mlp):
    mlp.doc.initialize()
    mlp.doc.forward()
    panel = make_panel(qtbot, mlp)
    qtbot.keyClicks(panel.filter, ".*bias")
    assert panel.visible_rows() == [B0, B1]
    assert list(mlp.doc.net.collect_params(".*bias")) == [B0, B1]
    panel.filter.clear()
    qtbot.keyClicks(panel.filter, "sequential0_dense1")
    assert panel.visible_rows() == [W1, B1]
    panel.filter.clear()
    qtbot.keyClicks(panel.filter, "dense1")        # re.match: anchored at the start
    assert panel.visible_rows() == []
    assert panel.empty_label.isVisible() and "No parameter name matches" in \
        panel.empty_label.text()
    panel.filter.clear()
    qtbot.keyClicks(panel.filter, "(dense")          # invalid: shown red, nothing filtered
    assert panel.filter.property("invalid") is True
    assert "not a valid regular expression" in panel.filter.toolTip()
    assert panel.visible_rows() == [W0, B0, W1, B1]
    qtbot.keyClick(panel.filter, Qt.Key.Key_Backspace)
    qtbot.keyClicks(panel.filter, "|.*weight)")
    assert panel.filter.property("invalid") is False
    assert panel.visible_rows() == [W0, W1]


# ----------------------------------------------------------------------------- non-finite
def test_nan_and_inf_are_marked_and_counted(qtbot, mlp):
    doc = mlp.doc
    doc.initialize()
    doc.forward()
    p = doc.params()[W0]
    w = p.data().asnumpy().copy()
    w[0, 0], w[1, 2], w[3, 4], w[3, 3] = np.nan, np.inf, -np.inf, -np.inf
    p.set_data(nd.array(w))
    doc.record_snapshot("poisoned")
    panel = make_panel(qtbot, mlp)
    cell = panel.cell(W0, "B")
    assert cell.prepared.counts == (1, 1, 2)
    caption = cell._caption_html
    assert "1 NaN" in caption and "1 +Inf" in caption and "2 −Inf" in caption
    assert "B: 1 NaN · 1 +Inf · 2 −Inf" in panel.row(W0).title.text()
    assert cell.overlay.isVisible()
    ov = np.asarray(cell.overlay.image)
    assert tuple(ov[0, 0]) == (255, 0, 255, 255)
    assert tuple(ov[1, 2]) == (0, 0, 0, 255)
    assert tuple(ov[3, 4])[:3] == (hp.NEGINF_COLOR.red(), hp.NEGINF_COLOR.green(),
                                   hp.NEGINF_COLOR.blue())
    assert ov[2, 2, 3] == 0                                  # finite: transparent
    # the scale ignores the non-finite values
    finite = w[np.isfinite(w)]
    assert cell.levels[1] >= np.abs(finite).max()
    assert np.isfinite(cell.levels).all()
    assert "NaN" not in panel.cell(W0, "A")._caption_html


# ----------------------------------------------------------------------------- hover
def test_hover_shows_name_index_and_exact_value(qtbot, mlp):
    doc = mlp.doc
    doc.initialize()
    doc.forward()
    panel = make_panel(qtbot, mlp)
    qtbot.waitExposed(panel)
    cell = panel.cell(W0, "B")
    w = doc.params()[W0].data().asnumpy()
    scene = cell.vb.mapViewToScene(QPointF(3.5, 2.5))          # column 3, row 2
    text = panel.hover_text(W0, "B", scene)
    assert text.startswith(f"{W0} · B #")
    assert f"[2, 3] = {hp._fmt(w[2, 3])}" in text
    assert np.float32(text.split("= ")[1]) == w[2, 3]        # exact: reads back the same
    # a bias strip: its index is 1-D
    bias_cell = panel.cell(B0, "B")
    assert "[1] = 0" in bias_cell.hover_text(bias_cell.vb.mapViewToScene(QPointF(1.5, 0.5)))
    assert panel.hover_text(W0, "B", cell.vb.mapViewToScene(QPointF(-3, -3))) == ""
    d = panel.cell(W0, "D")                 # A had no values yet: B − A is a placeholder
    assert d.hover_text(d.vb.mapViewToScene(QPointF(0.5, 0.5))) == ""
    # a real mouse move over the view shows it in the hover line
    row = panel.row(W0)
    view_pt = row.glw.mapFromScene(cell.vb.mapViewToScene(QPointF(0.5, 3.5)))
    qtbot.mouseMove(row.glw.viewport(), view_pt)
    qtbot.waitUntil(lambda: "[3, 0]" in panel.hover_label.text())
    assert hp._fmt(w[3, 0]) in panel.hover_label.text()
    assert cell.outline.isVisible() and not panel.cell(W0, "A").outline.isVisible()
    # after a backward, B − A has values (zeros) and the same cell is outlined everywhere
    doc.backward()
    d = panel.cell(W0, "D")
    assert "B − A  [0, 0] = 0" in d.hover_text(d.vb.mapViewToScene(QPointF(0.5, 0.5)))
    qtbot.mouseMove(row.glw.viewport(), view_pt + QPoint(1, 0))
    qtbot.waitUntil(lambda: d.outline.isVisible())
    assert panel.cell(W0, "A").outline.isVisible() and panel.cell(W0, "G").outline.isVisible()
    assert d.outline.rect().topLeft() == QPointF(0, 3)


def test_hover_on_a_pooled_heatmap_names_the_original_index(qtbot, host):
    wb, w = big_workbench(host)
    panel = make_panel(qtbot, wb)
    cell = panel.cell(W0, "B")
    fy, fx = cell.prepared.factors
    r, c = 2 * fy + 1, 3 * fx + 2                 # inside block (2, 3)
    block = w[2 * fy:3 * fy, 3 * fx:4 * fx]
    i, j = np.unravel_index(np.argmax(np.abs(block)), block.shape)
    text = cell.hover_text(cell.vb.mapViewToScene(QPointF(c + 0.5, r + 0.5)))
    assert f"[{2 * fy + i}, {3 * fx + j}] = {hp._fmt(block[i, j])}" in text
    assert f"rows {2 * fy}–{3 * fy - 1}, columns {3 * fx}–{4 * fx - 1}" in text


# ----------------------------------------------------------------------------- zoom
def test_zooming_in_shows_exact_values(qtbot, host):
    wb, w = big_workbench(host, units=1000, in_units=1000)
    panel = make_panel(qtbot, wb)
    qtbot.waitExposed(panel)
    cell = panel.cell(W0, "B")
    assert cell.prepared.factors != (1, 1)
    cell.vb.setRange(xRange=(600, 640), yRange=(100, 140), padding=0)
    cell.refresh_detail()
    r0, r1, c0, c1, factors = cell.detail_info
    assert factors == (1, 1) and cell.detail.isVisible()
    np.testing.assert_array_equal(np.asarray(cell.detail.image), w[r0:r1, c0:c1])
    assert r0 <= 100 and r1 >= 140 and c0 <= 600 and c1 >= 640
    assert "exact values" in cell._caption_html
    text = cell.hover_text(cell.vb.mapViewToScene(QPointF(610.5, 120.5)))
    assert f"[120, 610] = {hp._fmt(w[120, 610])}" in text and "largest" not in text
    cell.zoom_exact(None)                  # show all again: the detail goes away
    assert cell.detail_info is None and not cell.detail.isVisible()
    cell.zoom_exact(QPointF(500, 500))     # "zoom to exact" (double-click)
    assert cell.detail_info is not None and cell.detail_info[4] == (1, 1)


def test_ctrl_wheel_zooms_and_plain_wheel_scrolls(qtbot, host):
    wb, _w = big_workbench(host, units=1000, in_units=1000)
    panel = make_panel(qtbot, wb)
    qtbot.waitExposed(panel)
    cell = panel.cell(W0, "B")
    before = cell.vb.viewRect()

    class Wheel:
        def __init__(self, mods):
            self._mods = mods
            self.accepted = None

        def modifiers(self):
            return self._mods

        def ignore(self):
            self.accepted = False

    ev = Wheel(Qt.KeyboardModifier.NoModifier)
    cell.vb.wheelEvent(ev)
    assert ev.accepted is False and cell.vb.viewRect() == before


# ----------------------------------------------------------------------------- pair, speed
def test_switching_the_pair_reuses_the_items(qtbot, mlp):
    doc = mlp.doc
    doc.initialize()
    doc.forward()
    doc.backward()
    doc.step()
    panel = make_panel(qtbot, mlp)
    items = {(n, k): panel.cell(n, k).image for n in (W0, W1) for k in "ABD"}
    rows = {n: panel.row(n) for n in (W0, W1)}
    snaps = doc.history.snapshots
    panel.set_pair(snaps[2].id, snaps[4].id)          # ids work...
    assert panel.pair() == (snaps[2], snaps[4])
    np.testing.assert_array_equal(image_of(panel, W0, "D"),
                                  snaps[4].params[W0].data - snaps[2].params[W0].data)
    panel.set_pair(snaps[3], snaps[2])                # ... and snapshots
    assert all(panel.cell(n, k).image is item for (n, k), item in items.items())
    assert all(panel.row(n) is row for n, row in rows.items())
    panel.set_pair(None, None)                        # back to following the default
    assert panel.pair() == doc.history.default_pair()


def test_the_timeline_drives_the_heatmaps(qtbot, mlp):
    doc = mlp.doc
    doc.initialize()
    doc.forward()
    doc.backward()
    timeline = TimelinePanel(mlp)
    qtbot.addWidget(timeline)
    panel = make_panel(qtbot, mlp)
    timeline.pair_changed.connect(panel.set_pair)
    timeline.show()
    qtbot.waitExposed(timeline)
    first = doc.history.snapshots[1]                   # the initialize
    with qtbot.waitSignal(timeline.pair_changed):
        qtbot.mouseClick(timeline.list.viewport(), Qt.MouseButton.LeftButton,
                         pos=timeline.cell_rect(first.id, timeline.COL_A).center())
    assert panel.pair()[0] is first
    assert panel.pair()[1].label == "backward"
    doc.step()                                         # pinned: the pair stays
    assert panel.pair()[0] is first and panel.pair()[1].label == "backward"
    timeline.follow_latest()                           # following again: the last two
    assert [s.label for s in panel.pair()] == ["backward", "step"]


# ----------------------------------------------------------------------------- export
def test_export_png_and_svg(qtbot, mlp, tmp_path, monkeypatch):
    mlp.doc.initialize()
    mlp.doc.forward()
    panel = make_panel(qtbot, mlp)
    png, svg = tmp_path / "grid.png", tmp_path / "grid.svg"
    panel.export(png)
    panel.export(svg, row=panel.row(W0))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    text = svg.read_text(encoding="utf-8")
    assert "<svg" in text and "<image" in text
    from PySide6.QtGui import QImage
    img = QImage(str(png))
    assert img.width() >= panel.row(W0).width() and img.height() > 4 * 100
    # the context menu's Export… asks for a file, then writes it
    target = tmp_path / "from_menu.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "PNG image (*.png)")))
    row = panel.row(W0)
    pos = row.glw.mapFromScene(panel.cell(W0, "B").vb.mapViewToScene(QPointF(2, 2)))
    viewport = row.glw.viewport()
    QApplication.sendEvent(viewport, QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos,
                                                       viewport.mapToGlobal(pos)))
    actions = {a.text(): a for a in panel._menu.actions()}
    assert f"Export {W0}…" in actions
    assert "Export…" in actions
    actions["Export…"].trigger()
    panel._menu.close()
    assert target.exists() and target.stat().st_size > 0


def test_an_empty_history_says_what_to_do(qtbot, host, qapp):
    wb = Workbench(host, Document(host=host))
    panel = make_panel(qtbot, wb)
    assert panel.pair() == (None, None)
    assert panel.empty_label.isVisible() and "Initialize" in panel.empty_label.text()
    wb.doc.add_layer("Dense", {"units": 3})
    wb.doc.initialize()
    assert panel.rows() and not panel.empty_label.isVisible()
    # a new document replaces the rows
    wb.set_document(fileformat.load(EXAMPLES / "chapter_mlp.json", host=host))
    assert panel.pair()[1].label.startswith("load")
    assert [r.name for r in panel.rows()] == [W0, B0, W1, B1]


def test_rows_out_of_view_are_filled_when_scrolled_to(qtbot, host):
    doc = Document(host=host)
    doc.set_input(shape=(2, 16))
    for _ in range(7):
        doc.add_layer("Dense", {"units": 16, "in_units": 16, "activation": "tanh"})
    doc.initialize()
    doc.forward()
    doc.backward()
    doc.step()
    wb = Workbench(host, doc)
    panel = make_panel(qtbot, wb)
    panel.resize(900, 400)
    qtbot.waitExposed(panel)
    s = doc.history.snapshots
    panel.set_pair(s[1], s[2])
    last = list(doc.params())[-2]                       # the last weight, far below
    assert panel._rows[last].stale                       # not drawn yet: out of view
    assert not panel._rows[list(doc.params())[0]].stale
    bar = panel.scroll.verticalScrollBar()
    bar.setValue(bar.maximum())
    assert not panel._rows[last].stale
    np.testing.assert_array_equal(np.asarray(panel._rows[last].cells["B"].image.image),
                                  s[2].params[last].data)
    # an export fills everything first
    panel.set_pair(s[1], s[3])
    first = list(doc.params())[0]
    assert panel._rows[first].stale
    panel.flush()
    assert not any(r.stale for r in panel.rows())


def test_dropped_snapshots_are_not_kept_alive_by_the_panel(qtbot, host):
    import gc
    import weakref
    doc = Document(host=host)
    doc.set_input(shape=(2, 600))
    doc.add_layer("Dense", {"units": 600, "in_units": 600, "activation": "tanh"})
    doc.initialize()
    doc.forward()
    for _ in range(3):
        doc.backward()
        doc.step()
    wb = Workbench(host, doc)
    panel = make_panel(qtbot, wb)
    snaps = doc.history.snapshots
    old = snaps[3]                                     # the first step: pooled (600 > 152)
    panel.set_pair(snaps[2], old)
    hover = panel.cell(W0, "B").hover_text(
        panel.cell(W0, "B").vb.mapViewToScene(QPointF(300.5, 300.5)))
    assert "[30" in hover                              # hover reads the full-size array
    ref = weakref.ref(old.params[W0].data)
    del old, snaps
    doc.history.set_budget(doc.history.nbytes() // 3)  # drops the oldest snapshots
    assert doc.history.dropped >= 4
    assert panel.pair() == doc.history.default_pair()
    gc.collect()
    assert ref() is None


def test_pyqtgraph_exporters_for_a_single_row(qtbot, mlp, tmp_path):
    from app.ui.export import ExportError, export_item
    mlp.doc.initialize()
    mlp.doc.forward()
    panel = make_panel(qtbot, mlp)
    row = panel.row(W0)
    png = export_item(row.glw.ci, tmp_path / "row.png", width=1200)
    svg = export_item(row.glw.ci, tmp_path / "row.svg")
    assert png.read_bytes()[:4] == b"\x89PNG" and "<svg" in svg.read_text(encoding="utf-8")
    with pytest.raises(ExportError, match="choose a .png or .svg"):
        export_item(row.glw.ci, tmp_path / "row.bmp")
