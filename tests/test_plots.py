"""Grids, GIFs and report figures: known pixel values, frame counts/loop/duration, dpi, totals."""

import json

import numpy as np
import pytest
from PIL import Image

from dcganlib.errors import DataError, RunFolderError
from dcganlib.images import LABEL_KEY, images_to_grid, make_gif, make_run_gif, save_grid
from dcganlib.plots import (
    model_summary_table,
    plot_history,
    plot_image_histograms,
    plot_model_diagram,
    plot_sample_grid,
    save_figure,
)
from dcganlib.runs import epoch_grids


def constant_images(values, size=4, channels=1):
    return np.stack([np.full((size, size, channels), v, np.float32) for v in values])


# ------------------------------------------------------------------------------------------------
# grids
def test_grid_places_images_row_by_row_with_known_values():
    # -1 → 0, -0.5 → round(0.5·127.5) = 64, 0 → round(127.5) = 128 (half to even: 127.5 → 128), 1 → 255
    grid = images_to_grid(constant_images([-1.0, -0.5, 0.0, 1.0]))
    assert grid.shape == (8, 8) and grid.dtype == np.uint8
    assert grid[0, 0] == 0 and grid[0, 4] == 64 and grid[4, 0] == 128 and grid[4, 4] == 255
    assert (grid[:4, :4] == 0).all() and (grid[4:, 4:] == 255).all()


def test_grid_layout_padding_rgb_uint8_and_clipping():
    # five images → 3 columns, 2 rows, the sixth cell black; out-of-range values are clipped
    grid = images_to_grid(constant_images([2.0, 1.0, 1.0, 1.0, -3.0], size=2))
    assert grid.shape == (4, 6)
    assert grid[0, 0] == 255 and grid[2, 2] == 0 and (grid[2:, 4:] == 0).all()
    rgb = images_to_grid(np.full((3, 2, 2, 3), 7, np.uint8), rows=1)  # uint8 passes through
    assert rgb.shape == (2, 6, 3) and (rgb == 7).all()
    assert images_to_grid(np.zeros((4, 3, 5), np.float32), rows=4).shape == (12, 5)  # (N, H, W) gray


def test_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        images_to_grid(np.zeros((2, 4, 4, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        images_to_grid(np.full((1, 4, 4, 1), np.nan, np.float32))
    with pytest.raises(ValueError, match="empty"):
        images_to_grid(np.zeros((0, 4, 4, 1), np.float32))


def test_save_grid_round_trip_and_label(tmp_path):
    images = constant_images([1.0, -1.0, -1.0, 1.0], size=8)
    path = save_grid(images, tmp_path / "sub" / "grid.png")
    with Image.open(path) as png:
        assert png.mode == "L" and LABEL_KEY not in png.info
        np.testing.assert_array_equal(np.asarray(png), images_to_grid(images))
    labelled = save_grid(images, tmp_path / "labelled.png", label="epoch 3")
    with Image.open(labelled) as png:
        pixels = np.asarray(png)
        assert png.info[LABEL_KEY] == "epoch 3"
    strip = 12  # max(12, round(0.07 · 16 px))
    assert pixels.shape == (16 + strip, 16)
    np.testing.assert_array_equal(pixels[strip:], images_to_grid(images))
    assert pixels[:strip].max() > 128  # white text drawn on the black strip
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


# ------------------------------------------------------------------------------------------------
# GIFs
def _frames(tmp_path, count, size=8, labelled=False):
    paths = []
    for i in range(count):
        images = constant_images([-1.0 + 2.0 * i / count] * 4, size=size)
        paths.append(save_grid(images, tmp_path / "grids" / f"epoch_{i + 1:04d}.png",
                               label=f"epoch {i + 1}" if labelled else None))
    return paths


def test_make_gif_frames_loop_duration(tmp_path):
    paths = _frames(tmp_path, 3, size=16)
    out = make_gif(paths, tmp_path / "out.gif", frame_ms=250)
    with Image.open(out) as gif:
        assert gif.n_frames == 3
        assert gif.info["loop"] == 0
        assert gif.info["duration"] == 250
        assert gif.size == (32, 32)
        gif.seek(2)
        assert gif.info["duration"] == 250


def test_make_gif_draws_labels_once(tmp_path):
    plain = _frames(tmp_path / "a", 2, size=16)
    out = make_gif(plain, tmp_path / "a.gif", labels=["epoch 1", "epoch 2"])
    with Image.open(out) as gif:
        assert gif.size == (32, 32 + 12)  # label strip added
    already = _frames(tmp_path / "b", 2, size=16, labelled=True)
    out = make_gif(already, tmp_path / "b.gif", labels=["epoch 1", "epoch 2"])
    with Image.open(out) as gif:
        assert gif.size == (32, 32 + 12)  # not a second strip


def test_make_gif_rejects_mixed_sizes_and_missing_frames(tmp_path):
    small = save_grid(constant_images([0.0], size=4), tmp_path / "small.png")
    large = save_grid(constant_images([0.0], size=8), tmp_path / "large.png")
    with pytest.raises(DataError, match="one size"):
        make_gif([small, large], tmp_path / "x.gif")
    with pytest.raises(DataError, match="not found"):
        make_gif([tmp_path / "missing.png"], tmp_path / "x.gif")
    assert not (tmp_path / "x.gif").exists()


def test_make_run_gif_orders_numerically_and_reads_config(tmp_path):
    run = tmp_path / "run"
    (run / "grids").mkdir(parents=True)
    for epoch in (10, 2, 1):  # text order would put 10 before 2
        value = {1: -1.0, 2: 0.0, 10: 1.0}[epoch]
        save_grid(constant_images([value] * 4, size=8), run / "grids" / f"epoch_{epoch:d}.png")
    (run / "config.json").write_text(json.dumps({"gif_frame_ms": 120}))
    assert [e for e, _ in epoch_grids(run)] == [1, 2, 10]
    out = make_run_gif(run)
    assert out == run / "training.gif"
    with Image.open(out) as gif:
        assert gif.n_frames == 3 and gif.info["duration"] == 120 and gif.info["loop"] == 0
        bottom = []
        for index in range(3):
            gif.seek(index)
            bottom.append(np.asarray(gif.convert("L"))[-1, -1])
    assert bottom == [0, 128, 255]  # frame pixels in epoch order, below the label strip
    with Image.open(make_run_gif(run, out=tmp_path / "fast.gif", frame_ms=50)) as gif:
        assert gif.info["duration"] == 50


def test_make_run_gif_errors(tmp_path):
    with pytest.raises(RunFolderError, match="run folder not found"):
        make_run_gif(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="no epoch grids in"):
        make_run_gif(tmp_path / "empty")


# ------------------------------------------------------------------------------------------------
# figures
def test_save_figure_writes_png_and_pdf_at_150_dpi(tmp_path):
    fig = plot_sample_grid(constant_images([-1.0, 1.0]), title="two")
    png, pdf = save_figure(fig, "sample_grid.png", folder=tmp_path / "images", close=True)
    assert png == tmp_path / "images" / "sample_grid.png" and pdf == tmp_path / "images" / "sample_grid.pdf"
    with Image.open(png) as image:
        assert image.info["dpi"][0] == pytest.approx(150, abs=0.5)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(ValueError, match="150 dpi"):
        save_figure(fig, "low", folder=tmp_path, dpi=72)
    with pytest.raises(ValueError, match="plain file name"):
        save_figure(fig, "../escape", folder=tmp_path)


def test_plot_history_from_csv_and_rows(tmp_path):
    rows = [
        {"epoch": 1, "d_loss": 1.2, "g_loss": 0.8, "d_acc_real": 0.6, "d_acc_fake": 0.7, "d_real": 0.55,
         "d_fake": 0.4},
        {"epoch": 2, "d_loss": 1.0, "g_loss": 1.1, "d_acc_real": 0.7, "d_acc_fake": 0.6, "d_real": 0.6,
         "d_fake": 0.45},
    ]
    path = tmp_path / "history.csv"
    path.write_text("epoch,d_loss,g_loss,d_acc_real,d_acc_fake,d_real,d_fake\n"
                    + "\n".join(",".join(str(r[k]) for k in rows[0]) for r in rows) + "\n")
    for source in (path, rows):
        fig = plot_history(source)
        assert len(fig.axes) == 3
        losses = fig.axes[0].get_lines()
        np.testing.assert_allclose(losses[0].get_ydata(), [1.2, 1.0])
        np.testing.assert_allclose(losses[1].get_xdata(), [1, 2])
    only_losses = plot_history([{"d_loss": 1.0, "g_loss": 2.0}])
    assert len(only_losses.axes) == 1
    with pytest.raises(DataError, match="no d_loss or g_loss column"):
        plot_history([{"epoch": 1, "loss": 3.0}])
    with pytest.raises(DataError, match="not found"):
        plot_history(tmp_path / "missing.csv")


def test_plot_image_histograms_counts():
    fig = plot_image_histograms({"train": np.zeros((2, 4, 4, 1), np.uint8), "fake": np.ones((1, 4, 4), np.float32)},
                                bins=4, log=False)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train (n=2)", "fake (n=1)"]


# ------------------------------------------------------------------------------------------------
# model diagrams (tiny models)
@pytest.fixture(scope="module")
def tiny_models():
    pytest.importorskip("keras")
    from dcganlib.config import Config
    from dcganlib.models import build_discriminator, build_generator

    config = Config(image_size=16, latent_dim=8, g_filters=4, d_filters=4, generator="radford")
    return build_generator(config), build_discriminator(config)


def test_model_summary_table_sums_to_count_params(tiny_models):
    for model in tiny_models:
        table = model_summary_table(model)
        assert sum(row["params"] for row in table) == model.count_params()
        assert [row["name"] for row in table] == [layer.name for layer in model.layers]
    generator_table = {row["name"]: row for row in model_summary_table(tiny_models[0])}
    assert generator_table["block1_convT"] == {"name": "block1_convT", "type": "Conv2DTranspose",
                                               "output_shape": (None, 8, 8, 4), "params": 512}


def test_plot_model_diagram_draws_grouped_blocks_with_total(tiny_models):
    generator, discriminator = tiny_models
    fig = plot_model_diagram(generator)
    ax = fig.axes[0]
    # z, project, block1, output, tanh → five boxes
    assert len(ax.patches) == 5
    texts = [t.get_text() for t in ax.texts]
    assert "Dense → Reshape → BatchNorm → ReLU" in texts and "1,056" in texts  # 1024 + 32
    assert ax.get_title() == "generator_radford — 1,649 parameters"
    ungrouped = plot_model_diagram(discriminator, group=False)
    assert len(ungrouped.axes[0].patches) == len(discriminator.layers)
