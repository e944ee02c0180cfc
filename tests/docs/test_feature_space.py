"""catch22 features, joint standardisation, the domain-gap numbers and the t-SNE figure of docs/feature_space.py."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

_SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "feature_space.py"
_spec = importlib.util.spec_from_file_location("feature_space", _SCRIPT)
fs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fs)

PERIOD = 20  # samples


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """t-SNE and the classifier on ≤ 100 points: OpenMP/BLAS threads only add overhead (×10 on a busy machine)."""
    with threadpool_limits(1):
        yield
FIRST_MIN = fs.CATCH22_NAMES.index("CO_FirstMin_ac")
ACF_1E = fs.CATCH22_NAMES.index("CO_FirstCrossing_acf_1e_pointOfCrossing")


def _sines(count: int, length: int, rng, noise: float = 0.3) -> np.ndarray:
    """`[count, length, 1]` sines of period 16–24 samples, random phase, plus white noise."""
    time = np.arange(length)
    periods = rng.uniform(16, 24, (count, 1))
    phases = rng.uniform(0, 2 * np.pi, (count, 1))
    return (np.sin(2 * np.pi * time / periods + phases) + noise * rng.normal(size=(count, length)))[..., None]


def test_autocorrelation_features_separate_a_sine_from_white_noise():
    time = np.arange(200)
    sine = np.sin(2 * np.pi * time / PERIOD)
    noise = np.random.default_rng(0).normal(size=200)
    features = fs.catch22_features(np.stack([sine, noise], axis=-1)[None])  # one window, two channels
    assert features.shape == (1, 44)
    sine_features, noise_features = features[0, :22], features[0, 22:]  # channel-major columns
    # The ACF of a sine is cos(2π τ / P): first minimum at τ = P/2 and first 1/e crossing at
    # τ = P · acos(1/e) / 2π = 3.80 samples; white noise decorrelates within one lag.
    assert sine_features[FIRST_MIN] == PERIOD / 2
    assert noise_features[FIRST_MIN] <= 2
    assert sine_features[ACF_1E] == pytest.approx(PERIOD * math.acos(1 / math.e) / (2 * math.pi), abs=0.05)
    assert noise_features[ACF_1E] < 1.0


def test_constant_channels_give_nan_features_that_standardising_sets_to_zero():
    rng = np.random.default_rng(1)
    windows = np.concatenate([_sines(6, 100, rng), np.full((6, 100, 1), 9.81)], axis=-1)
    features = fs.catch22_features(windows)
    assert np.isnan(features[:, 22:]).all() and np.isfinite(features[:, :22]).all()
    with pytest.warns(RuntimeWarning, match="132 of 264 feature values are undefined"):
        real, virtual = fs.standardise_jointly(features[:3], features[3:])
    assert np.array_equal(np.concatenate([real, virtual])[:, 22:], np.zeros((6, 22)))
    assert np.isfinite(real).all() and np.isfinite(virtual).all()


def test_standardise_jointly_uses_the_pooled_mean_and_std():
    real = np.array([[0.0, 5.0], [2.0, 5.0]])
    virtual = np.array([[4.0, 5.0], [6.0, 5.0]])  # pooled column 0: mean 3, std √5; column 1 has no spread
    real_z, virtual_z = fs.standardise_jointly(real, virtual)
    expected = (np.array([0.0, 2.0, 4.0, 6.0]) - 3.0) / math.sqrt(5.0)
    np.testing.assert_allclose(np.concatenate([real_z, virtual_z])[:, 0], expected, atol=1e-12)
    assert np.array_equal(np.concatenate([real_z, virtual_z])[:, 1], np.zeros(4))


def test_domain_gap_of_one_distribution_is_chance_and_of_shifted_ones_is_separable():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(150, 20))
    same = fs.domain_gap(real, rng.normal(size=(150, 20)))
    # Chance level 0.5; a CV estimate on 300 rows has a standard error of ≈ √(0.25/300) = 0.03.
    assert same["domain_balanced_accuracy"] == pytest.approx(0.5, abs=0.1)  # measured 0.553
    # E|d| for two samples of 150 from one distribution: √(2/150) · √(2/π) = 0.092.
    assert same["mean_abs_smd"] == pytest.approx(0.092, abs=0.05)  # measured 0.096
    shifted = fs.domain_gap(real, rng.normal(loc=3.0, size=(100, 20)))
    assert shifted["domain_balanced_accuracy"] >= 0.99  # measured 1.0
    assert shifted["mean_abs_smd"] == pytest.approx(3.0, abs=0.3)  # every feature moved by 3 sd; measured 3.07
    assert (shifted["n_real"], shifted["n_virtual"], shifted["smd_features"]) == (150, 100, 20)


def test_domain_gap_on_catch22_features_of_windows():
    rng = np.random.default_rng(3)
    real = fs.catch22_features(_sines(40, 100, rng))
    same = fs.domain_gap(real, fs.catch22_features(_sines(40, 100, rng)))
    noise = fs.domain_gap(real, fs.catch22_features(rng.normal(size=(40, 100, 1))))
    assert same["domain_balanced_accuracy"] == pytest.approx(0.5, abs=0.15)  # 80 rows; measured 0.50
    assert noise["domain_balanced_accuracy"] >= 0.95  # sines vs white noise; measured 1.0


def _scatter_collections(figure):
    return [collection for collection in figure.axes[0].collections if len(collection.get_offsets())]


def test_figure_has_one_point_collection_per_domain_with_their_counts():
    rng = np.random.default_rng(4)
    figure = fs.feature_space_figure(_sines(30, 80, rng), rng.normal(size=(45, 80, 1)), perplexity=20)
    real, virtual = _scatter_collections(figure)
    assert (len(real.get_offsets()), len(virtual.get_offsets())) == (30, 45)
    assert real.get_paths()[0] != virtual.get_paths()[0]  # distinct markers
    assert "balanced accuracy 1.00" in figure.axes[0].get_title()
    plt.close(figure)


def test_figure_colours_points_by_class():
    rng = np.random.default_rng(5)
    labels_real = np.repeat([0, 1], 15)
    labels_virtual = np.repeat([1, 2], 10)
    figure = fs.feature_space_figure(
        _sines(30, 80, rng), _sines(20, 80, rng), labels_real=labels_real, labels_virtual=labels_virtual,
        class_names=["walk", "run", "fall"], perplexity=10,
    )
    real, virtual = _scatter_collections(figure)
    colours = np.concatenate([real.get_facecolors(), virtual.get_facecolors()])[:, :3]
    labels = np.concatenate([labels_real, labels_virtual])
    for label in range(3):
        assert np.unique(colours[labels == label], axis=0).shape[0] == 1
    assert np.unique(colours, axis=0).shape[0] == 3
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == ["real (30)", "virtual (20)", "walk", "run", "fall"]
    plt.close(figure)


def test_command_line_writes_the_figure_and_prints_the_gap(tmp_path, capsys):
    rng = np.random.default_rng(6)
    np.savez(tmp_path / "real.npz", windows=_sines(20, 80, rng), labels=np.repeat([0, 1], 10))
    np.savez(tmp_path / "virtual.npz", windows=_sines(20, 80, rng), labels=np.repeat([0, 1], 10))
    gap = fs.main([str(tmp_path / "real.npz"), str(tmp_path / "virtual.npz"), "--out", str(tmp_path / "fig.png"),
                   "--class-names", "sit,stand", "--perplexity", "10"])
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(capsys.readouterr().out) == gap


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: fs.catch22_features(np.zeros((4, 50))), "windows must have shape"),
        (lambda: fs.catch22_features(np.full((2, 50, 1), np.nan)), "windows holds non-finite"),
        (lambda: fs.feature_space_figure(np.ones((5, 50, 2)), np.ones((5, 50, 3))), "same channels"),
        (lambda: fs.feature_space_figure(np.ones((5, 50, 1)), np.ones((5, 50, 1))), "perplexity must lie"),
        (lambda: fs.feature_space_figure(np.ones((5, 50, 1)), np.ones((5, 50, 1)), perplexity=3,
                                         labels_real=[0, 1]), "labels_real must have shape"),
        (lambda: fs.feature_space_figure(np.ones((5, 50, 1)), np.ones((5, 50, 1)), perplexity=3,
                                         labels_virtual=[0, 1, 2, 3, 4], class_names=["a"]), "labels_virtual must be"),
        (lambda: fs.domain_gap(np.zeros((5, 3)), np.zeros((5, 4))), "differ in width"),
        (lambda: fs.domain_gap(np.zeros((5, 3)), np.full((5, 3), np.inf)), "virtual_features holds infinite"),
        (lambda: fs.domain_gap(np.random.rand(5, 3), np.random.rand(3, 3)), "folds must be"),
        (lambda: fs.domain_gap(np.zeros((5, 3)), np.ones((5, 3))), "no feature has spread"),
    ],
)
def test_bad_inputs_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_command_line_names_a_file_without_windows(tmp_path):
    np.savez(tmp_path / "real.npz", data=np.zeros((3, 10, 1)))
    with pytest.raises(ValueError, match=r"real\.npz: missing key 'windows'"):
        fs.main([str(tmp_path / "real.npz"), str(tmp_path / "real.npz")])
