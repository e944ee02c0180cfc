"""Real vs virtual IMU windows in one feature space: catch22 per channel, t-SNE, and a measured domain gap.

    python docs/feature_space.py real.npz virtual.npz --out feature_space.png [--class-names walk,run,fall]

Each `.npz` holds `windows` `[N, T, C]` (the same C channels, e.g. acc xyz in m/s² and gyro xyz in rad/s,
ideally the same T) and optionally `labels` `[N]` (class indices into `--class-names`, or class names).
The domain gap is printed as JSON.

Features: the 22 catch22 features (Lubba et al., "catch22: CAnonical Time-series CHaracteristics",
Data Min. Knowl. Disc. 33, 2019) of every channel, `[N, 22·C]`, channel-major (column `22·c + k` is
feature `CATCH22_NAMES[k]` of channel c). catch22 z-scores each series first, so the features describe
the shape of a channel's time course, not its offset or scale (gravity level, amplitude).

Undefined features: catch22 cannot estimate its features on a constant channel. We ask pycatch22 for NaN
there rather than its masked end-of-range stand-ins, which would be outliers dominating the standardised
space; after real and virtual features are z-scored together, each NaN becomes 0 — the pooled mean, i.e.
"no information" — and a RuntimeWarning says how many values were imputed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pycatch22  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_score  # noqa: E402

CATCH22_NAMES = tuple(entry["name"] for entry in pycatch22.feature_table())
"""The catch22 feature names, in `catch22_all`'s order."""
REAL_MARKER, VIRTUAL_MARKER = "o", "^"
UNLABELLED_COLOUR = "0.55"


def _check_windows(windows, name: str) -> np.ndarray:
    windows = np.asarray(windows, dtype=np.float64)
    if windows.ndim != 3 or 0 in windows.shape:
        raise ValueError(f"{name} must have shape [N, T, C] with N, T, C ≥ 1, got {windows.shape}")
    if not np.isfinite(windows).all():
        raise ValueError(f"{name} holds non-finite values")
    return windows


def catch22_features(windows: np.ndarray) -> np.ndarray:
    """catch22 of every channel of every window: `[N, T, C]` → `[N, 22·C]`, channel-major.

    NaN where catch22 is undefined (a constant channel gives 22 NaNs); `standardise_jointly` handles them.
    """
    windows = _check_windows(windows, "windows")
    return np.array(
        [
            [value for channel in window.T for value in pycatch22.catch22_all(channel, mask_nans=False)["values"]]
            for window in windows
        ],
        dtype=np.float64,
    )


def _check_features(real_features, virtual_features) -> tuple[np.ndarray, np.ndarray]:
    real = np.asarray(real_features, dtype=np.float64)
    virtual = np.asarray(virtual_features, dtype=np.float64)
    for name, features in (("real_features", real), ("virtual_features", virtual)):
        if features.ndim != 2 or features.shape[0] < 2 or features.shape[1] == 0:
            raise ValueError(f"{name} must have shape [N ≥ 2, F ≥ 1], got {features.shape}")
        if np.isinf(features).any():
            raise ValueError(f"{name} holds infinite values")
    if real.shape[1] != virtual.shape[1]:
        raise ValueError(f"real_features and virtual_features differ in width: {real.shape[1]} vs {virtual.shape[1]}")
    return real, virtual


def standardise_jointly(real_features: np.ndarray, virtual_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-score `[N1, F]` and `[N2, F]` with their pooled mean and std (NaN ignored); NaN → 0 afterwards.

    A feature with no spread over the pooled rows becomes 0 everywhere (it cannot tell anything apart).
    """
    real, virtual = _check_features(real_features, virtual_features)
    pooled = np.concatenate([real, virtual])
    missing = np.isnan(pooled)
    defined_columns = ~missing.all(axis=0)
    mean = np.zeros(pooled.shape[1])
    std = np.zeros(pooled.shape[1])
    mean[defined_columns] = np.nanmean(pooled[:, defined_columns], axis=0)
    std[defined_columns] = np.nanstd(pooled[:, defined_columns], axis=0)
    scale = np.where(std > 0, std, np.inf)  # no spread: every value maps to 0
    standardised = np.where(missing, 0.0, (pooled - mean) / scale)
    if missing.any():
        warnings.warn(
            f"{int(missing.sum())} of {missing.size} feature values are undefined (NaN, e.g. catch22 of a "
            "constant channel) and were set to 0, the pooled mean",
            RuntimeWarning,
            stacklevel=2,
        )
    return standardised[: len(real)], standardised[len(real) :]


def _standardised_mean_differences(real: np.ndarray, virtual: np.ndarray) -> np.ndarray:
    """Per-feature (mean_real − mean_virtual) / pooled sd, NaN values ignored, NaN where undefined."""
    differences = np.full(real.shape[1], np.nan)
    for column in range(real.shape[1]):
        a = real[:, column][~np.isnan(real[:, column])]
        b = virtual[:, column][~np.isnan(virtual[:, column])]
        if len(a) < 2 or len(b) < 2:
            continue
        pooled_sd = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
        if pooled_sd > 0:
            differences[column] = (a.mean() - b.mean()) / pooled_sd
    return differences


def domain_gap(real_features: np.ndarray, virtual_features: np.ndarray, *, folds: int = 5, seed: int = 0) -> dict:
    """How far apart real `[N1, F]` and virtual `[N2, F]` features are (e.g. from `catch22_features`).

    Returns:
        domain_balanced_accuracy: mean balanced accuracy of a logistic-regression real-vs-virtual classifier
            over stratified `folds`-fold cross-validation on the jointly standardised features (pooled
            statistics, no domain labels, so the scaling leaks no answer): 0.5 means indistinguishable, 1.0
            fully separable (balanced, so unequal N1 and N2 do not move the baseline).
        domain_accuracy_fold_std: its standard deviation over the folds.
        mean_abs_smd: mean over features of |standardised mean difference| (Cohen's d with the pooled sd,
            NaN values ignored; features without spread are left out).
        smd_features: how many features entered `mean_abs_smd`.
        n_real, n_virtual: the numbers of rows.
    """
    real, virtual = _check_features(real_features, virtual_features)
    return _gap(real, virtual, *standardise_jointly(real, virtual), folds=folds, seed=seed)


def _gap(real, virtual, real_z, virtual_z, *, folds: int, seed: int) -> dict:
    """`domain_gap` of raw features `real`, `virtual` whose joint standardisation is `real_z`, `virtual_z`."""
    if int(folds) < 2 or min(len(real), len(virtual)) < int(folds):
        rows = f"({len(real)}, {len(virtual)})"
        raise ValueError(f"folds must be ≥ 2 and ≤ the rows of each domain {rows}, got {folds}")
    smd = _standardised_mean_differences(real, virtual)
    if np.isnan(smd).all():
        raise ValueError("no feature has spread in both real_features and virtual_features: the gap is undefined")
    features = np.concatenate([real_z, virtual_z])
    domains = np.r_[np.zeros(len(real_z), dtype=int), np.ones(len(virtual_z), dtype=int)]
    splits = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=seed)
    classifier = LogisticRegression(max_iter=2000)
    scores = cross_val_score(classifier, features, domains, cv=splits, scoring="balanced_accuracy")
    return {
        "domain_balanced_accuracy": float(scores.mean()),
        "domain_accuracy_fold_std": float(scores.std()),
        "mean_abs_smd": float(np.nanmean(np.abs(smd))),
        "smd_features": int(np.count_nonzero(~np.isnan(smd))),
        "n_real": len(real),
        "n_virtual": len(virtual),
    }


def _class_names_of(labels, class_names: Sequence[str] | None, name: str, count: int) -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.shape != (count,):
        raise ValueError(f"{name} must have shape [{count}] (one per window), got {labels.shape}")
    if class_names is None:
        return labels.astype(str)
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= len(class_names):
        raise ValueError(f"{name} must be class indices in [0, {len(class_names)}) when class_names is given")
    return np.asarray(class_names, dtype=str)[labels]


def feature_space_figure(
    real: np.ndarray,
    virtual: np.ndarray,
    *,
    labels_real=None,
    labels_virtual=None,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    perplexity: float = 30.0,
) -> plt.Figure:
    """t-SNE map of the catch22 features of real `[N1, T, C]` and virtual `[N2, T, C]` windows.

    Features are standardised jointly; t-SNE (scikit-learn, PCA init, `random_state=seed`) places them in
    2-D. Real windows are drawn as circles, virtual ones as triangles — one scatter collection each, in
    that order — coloured by class when labels are given (grey otherwise). The title gives `domain_gap`.
    """
    return _figure_and_gap(real, virtual, labels_real, labels_virtual, class_names, seed, perplexity)[0]


def _figure_and_gap(real, virtual, labels_real, labels_virtual, class_names, seed, perplexity):
    real = _check_windows(real, "real")
    virtual = _check_windows(virtual, "virtual")
    if real.shape[2] != virtual.shape[2]:
        raise ValueError(f"real and virtual must have the same channels C, got {real.shape[2]} and {virtual.shape[2]}")
    total = len(real) + len(virtual)
    if not 0 < perplexity < total:
        raise ValueError(f"perplexity must lie in (0, {total}) (the number of windows), got {perplexity}")
    names_real = _class_names_of(labels_real, class_names, "labels_real", len(real))
    names_virtual = _class_names_of(labels_virtual, class_names, "labels_virtual", len(virtual))
    real_features, virtual_features = catch22_features(real), catch22_features(virtual)
    real_z, virtual_z = standardise_jointly(real_features, virtual_features)
    gap = _gap(real_features, virtual_features, real_z, virtual_z, folds=min(5, len(real), len(virtual)), seed=seed)
    tsne = TSNE(perplexity=perplexity, init="pca", random_state=seed)
    embedding = tsne.fit_transform(np.concatenate([real_z, virtual_z]))

    if class_names is not None:
        classes = list(class_names)
    else:
        classes = sorted({name for names in (names_real, names_virtual) if names is not None for name in names})
    palette = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    colour_of = {name: palette(index % palette.N) for index, name in enumerate(classes)}

    figure, axis = plt.subplots(figsize=(7.5, 6.5))
    domains = (
        (embedding[: len(real)], names_real, REAL_MARKER, "real"),
        (embedding[len(real) :], names_virtual, VIRTUAL_MARKER, "virtual"),
    )
    for points, names, marker, domain in domains:
        colours = [UNLABELLED_COLOUR] * len(points) if names is None else [colour_of[name] for name in names]
        axis.scatter(points[:, 0], points[:, 1], c=colours, marker=marker, s=28, alpha=0.75, edgecolors="k",
                     linewidths=0.3, label=domain)
    handles = [
        Line2D([], [], marker=marker, linestyle="", color=UNLABELLED_COLOUR, markeredgecolor="k",
               label=f"{domain} ({len(points)})")
        for points, _, marker, domain in domains
    ]
    handles += [Line2D([], [], marker="s", linestyle="", color=colour_of[name], label=name) for name in classes]
    axis.legend(handles=handles, loc="best", fontsize=8, framealpha=0.8)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_xlabel("t-SNE 1")
    axis.set_ylabel("t-SNE 2")
    axis.set_title(
        f"catch22 per channel, t-SNE (perplexity {perplexity:g})\n"
        f"domain classifier balanced accuracy {gap['domain_balanced_accuracy']:.2f} (0.5 = indistinguishable), "
        f"mean |SMD| {gap['mean_abs_smd']:.2f}",
        fontsize=9,
    )
    figure.tight_layout()
    return figure, gap


def _read_windows(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    with np.load(path, allow_pickle=False) as archive:
        if "windows" not in archive.files:
            raise ValueError(f"{path}: missing key 'windows' ([N, T, C]); found {archive.files}")
        return archive["windows"], (archive["labels"] if "labels" in archive.files else None)


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("real", type=Path, help=".npz with windows [N, T, C] and optional labels [N]")
    parser.add_argument("virtual", type=Path, help=".npz with windows [N, T, C] and optional labels [N]")
    parser.add_argument("--out", type=Path, default=Path("feature_space.png"), help="figure file")
    parser.add_argument("--class-names", default=None, help="comma-separated names for integer labels")
    parser.add_argument("--perplexity", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    real, labels_real = _read_windows(args.real)
    virtual, labels_virtual = _read_windows(args.virtual)
    class_names = args.class_names.split(",") if args.class_names else None
    figure, gap = _figure_and_gap(real, virtual, labels_real, labels_virtual, class_names, args.seed, args.perplexity)
    figure.savefig(args.out, dpi=120)
    plt.close(figure)
    print(json.dumps(gap, indent=2))
    return gap


if __name__ == "__main__":
    main(sys.argv[1:])
