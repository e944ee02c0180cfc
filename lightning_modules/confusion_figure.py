"""Render a confusion matrix as a matplotlib Figure (Agg canvas, no pyplot).

The figure is built on an explicit Agg canvas instead of through pyplot so it
works headless (training nodes, DDP workers) and never touches the global
pyplot backend or figure registry of the host process.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# Past this many classes per-cell text becomes unreadable clutter.
_MAX_ANNOTATED_CLASSES = 30


def row_normalize(matrix: torch.Tensor) -> torch.Tensor:
    """Divide each row of a [K, K] count matrix by its sum (rows with no samples stay 0).

    Rows are true classes, so a normalised row holds the per-class recall on
    the diagonal and where that class's misses went off it.
    """
    counts = matrix.detach().to(device="cpu", dtype=torch.float64)
    totals = counts.sum(dim=1, keepdim=True)
    return torch.where(totals > 0, counts / totals.clamp_min(1), torch.zeros_like(counts))


def confusion_matrix_figure(
    matrix: torch.Tensor, class_names: Sequence[str], normalize: bool = True
) -> Figure:
    """Plot a confusion matrix.

    Args:
        matrix: [K, K] counts, rows = true class, columns = predicted class
            (torchmetrics' `MulticlassConfusionMatrix` convention).
        class_names: K labels for the axes.
        normalize: colour (and first annotation line) by row-normalised
            fraction; raw counts are always annotated underneath.

    Returns:
        A matplotlib Figure; the caller owns it (close it after logging).
    """
    if not isinstance(matrix, torch.Tensor) or matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        shape = tuple(matrix.shape) if isinstance(matrix, torch.Tensor) else type(matrix).__name__
        raise ValueError(f"matrix must be a square 2-D tensor [K, K], got {shape}")
    k = matrix.shape[0]
    names = [str(n) for n in class_names]
    if len(names) != k:
        raise ValueError(f"class_names must have {k} entries (one per matrix row), got {len(names)}")

    counts = matrix.detach().cpu().to(torch.float64)
    shown = row_normalize(counts) if normalize else counts

    side = max(4.0, 0.55 * k + 2.5)
    fig = Figure(figsize=(side + 1.0, side), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself to fig; makes savefig/draw work headless
    ax = fig.add_subplot()
    vmax = 1.0 if normalize else max(float(counts.max()), 1.0)
    image = ax.imshow(shown.numpy(), cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class" if normalize else "count")

    ax.set_xticks(range(k), labels=names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), labels=names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix" + (" (row-normalised)" if normalize else ""))

    if k <= _MAX_ANNOTATED_CLASSES:
        fontsize = 8 if k <= 12 else 6
        for i in range(k):
            for j in range(k):
                value = float(shown[i, j])
                count = int(round(float(counts[i, j])))
                text = f"{value:.2f}\n({count})" if normalize else f"{count}"
                # Dark cells get white text so the annotation stays legible.
                color = "white" if value > 0.6 * vmax else "black"
                ax.text(j, i, text, ha="center", va="center", color=color, fontsize=fontsize)
    return fig
