"""Chapter 2's figures: the networks drawn block by block from the Keras models, and their summary table."""

from __future__ import annotations

from typing import Any, Optional

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from .saving import figure_and_axes

_SHORT_TYPES = {
    "BatchNormalization": "BatchNorm",
    "Conv2DTranspose": "ConvTranspose",
    "UpSampling2D": "UpSample",
    "InputLayer": "Input",
}
_COLOURS = {
    "Input": "#e8e8e8", "Dense": "#f4c27a", "Conv2D": "#8ec5e8", "ConvTranspose": "#a6d99b",
    "UpSample": "#c9b6e4", "BatchNorm": "#f2e394", "Dropout": "#dddddd", "Reshape": "#eeeeee",
    "Flatten": "#eeeeee",
}


def _output_shape(layer: Any) -> tuple:
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):  # layers not yet called, or with several outputs
        return tuple(getattr(layer, "output_shape", ()) or ())


def model_summary_table(model: Any) -> list[dict[str, Any]]:
    """One row per layer: ``{"name", "type", "output_shape", "params"}``.

    ``output_shape`` has ``None`` for the batch axis; ``params`` counts every weight including batch
    norms' moving statistics, so the rows sum to ``model.count_params()``.
    """
    return [
        {
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": _output_shape(layer),
            "params": int(layer.count_params()) if layer.weights else 0,
        }
        for layer in model.layers
    ]


def _blocks(table: list[dict[str, Any]], group: bool) -> list[dict[str, Any]]:
    # Layers named "<block>_<part>" (the dcganlib models: block1_convT, block1_bn, block1_relu) are
    # drawn as one box; anything else gets its own box.
    blocks: list[dict[str, Any]] = []
    for row in table:
        key = row["name"].split("_")[0] if group else row["name"]
        kind = _SHORT_TYPES.get(row["type"], row["type"])
        if blocks and blocks[-1]["key"] == key:
            block = blocks[-1]
            block["types"].append(kind)
            block["params"] += row["params"]
            block["output_shape"] = row["output_shape"]
        else:
            blocks.append({"key": key, "types": [kind], "params": row["params"],
                           "output_shape": row["output_shape"]})
    return blocks


def _shape_text(shape: tuple) -> str:
    dims = [d for d in shape[1:]] if shape and shape[0] is None else list(shape)
    return " × ".join(str(d) for d in dims) if dims else "?"


def plot_model_diagram(model: Any, *, ax: Any = None, group: bool = True, title: Optional[str] = None) -> Figure:
    """Draw a Keras model's layer stack as boxes, input at the top (no pydot or Graphviz needed).

    Each box shows the block name, its layer types, its output shape (without the batch axis) and its
    parameter count; the title gives the total (``model.count_params()``). With ``group=True`` layers
    sharing a ``"<block>_"`` name prefix are merged into one box. Pass ``ax`` to draw two models side
    by side.
    """
    blocks = _blocks(model_summary_table(model), group)
    n = len(blocks)
    fig, ax = figure_and_axes(ax, (6.4, 0.62 * n + 0.9))
    ax.set_xlim(0, 1)
    ax.set_ylim(n, -0.2)
    ax.set_axis_off()
    box_height = 0.72
    for i, block in enumerate(blocks):
        main = next((t for t in block["types"] if t in _COLOURS and t not in ("BatchNorm", "Dropout")),
                    block["types"][0])
        ax.add_patch(FancyBboxPatch((0.02, i + (1 - box_height) / 2), 0.96, box_height,
                                    boxstyle="round,pad=0,rounding_size=0.08", linewidth=0.8,
                                    edgecolor="0.35", facecolor=_COLOURS.get(main, "#f7f7f7")))
        centre = i + 0.5
        ax.text(0.05, centre - 0.13, block["key"], fontsize=9, fontweight="bold", va="center")
        ax.text(0.05, centre + 0.17, " → ".join(block["types"]), fontsize=7.5, va="center", color="0.2")
        ax.text(0.70, centre, _shape_text(block["output_shape"]), fontsize=8.5, va="center", ha="right",
                family="monospace")
        ax.text(0.96, centre, f"{block['params']:,}" if block["params"] else "–", fontsize=8.5,
                va="center", ha="right", family="monospace")
        if i:
            ax.annotate("", xy=(0.5, i + (1 - box_height) / 2), xytext=(0.5, i - (1 - box_height) / 2),
                        arrowprops=dict(arrowstyle="->", color="0.4", linewidth=0.8))
    ax.text(0.70, -0.08, "output shape", fontsize=7.5, ha="right", color="0.35")
    ax.text(0.96, -0.08, "parameters", fontsize=7.5, ha="right", color="0.35")
    total = int(model.count_params())
    ax.set_title(f"{title or model.name} — {total:,} parameters", fontsize=10)
    if ax is fig.axes[0] and len(fig.axes) == 1:
        fig.tight_layout()
    return fig
