import math

import pytest
import torch

from networks.diffusion import GaussianDiffusion, beta_schedule, cosine_alpha_bar, space_timesteps

pytestmark = pytest.mark.usefixtures("one_thread")

# Data distribution of the statistical tests: x₀ ~ N(MU, SIGMA²) per entry. Its exact posterior mean
# E[x₀ | x_t] = MU + SIGMA² √ᾱ / (ᾱ SIGMA² + 1 − ᾱ) · (x_t − √ᾱ MU) is the ideal x₀-predicting denoiser.
MU, SIGMA = 0.3, 0.5
N_SAMPLES = 20_000  # standard errors: mean 0.5/√N = 0.0035, std 0.5/√(2N) = 0.0025


def _closed_form_alpha_bar(i: int, steps: int) -> float:
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    return f((i + 1) / steps) / f(0.0)


def _ideal_denoiser(base: GaussianDiffusion):
    """x̂₀ for Gaussian data, reading ᾱ of the *base* process at the step index it is given."""

    def model_fn(x, t):
        alpha_bar = base.alphas_cumprod[t].to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
        gain = SIGMA**2 * alpha_bar.sqrt() / (alpha_bar * SIGMA**2 + 1 - alpha_bar)
        return MU + gain * (x - alpha_bar.sqrt() * MU)

    return model_fn


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- schedules -------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [1000, 50])
def test_cosine_alpha_bar_matches_the_closed_form(steps):
    diffusion = GaussianDiffusion(steps=steps, schedule="cosine")
    expected = torch.tensor([_closed_form_alpha_bar(i, steps) for i in range(steps)], dtype=torch.float64)
    # Every step but the last is unclipped; the last β would be 1 (ᾱ(1) = 0) and is capped at 0.999.
    torch.testing.assert_close(diffusion.alphas_cumprod[:-1], expected[:-1], atol=1e-6, rtol=0)
    assert (diffusion.betas[:-1] < 0.999).all()
    assert diffusion.betas[-1].item() == pytest.approx(0.999, abs=1e-12)
    torch.testing.assert_close(diffusion.alphas_cumprod[-1], expected[-2] * 0.001, atol=1e-12, rtol=0)
    torch.testing.assert_close(diffusion.betas, beta_schedule("cosine", steps), atol=1e-12, rtol=0)


def test_cosine_alpha_bar_function():
    u = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    expected = [math.cos(0.008 / 1.008 * math.pi / 2) ** 2, math.cos(0.508 / 1.008 * math.pi / 2) ** 2, 0.0]
    torch.testing.assert_close(cosine_alpha_bar(u), torch.tensor(expected, dtype=torch.float64), atol=1e-12, rtol=0)


def test_linear_schedule_scales_with_steps():
    torch.testing.assert_close(beta_schedule("linear", 1000)[[0, -1]], torch.tensor([1e-4, 0.02], dtype=torch.float64))
    torch.testing.assert_close(beta_schedule("linear", 50)[[0, -1]], torch.tensor([2e-3, 0.4], dtype=torch.float64))
    diffusion = GaussianDiffusion(steps=1000, schedule="linear")
    expected = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    torch.testing.assert_close(diffusion.alphas_cumprod, expected, atol=1e-12, rtol=0)


# ---- forward process and posterior ------------------------------------------------------------------


def test_q_sample_closed_form_and_statistics():
    diffusion = GaussianDiffusion(steps=1000)
    x0 = torch.full((N_SAMPLES, 2), 0.7)
    t = torch.full((N_SAMPLES,), 300, dtype=torch.long)
    noise = torch.randn(x0.shape, generator=_generator())
    x_t = diffusion.q_sample(x0, t, noise)
    alpha_bar = _closed_form_alpha_bar(300, 1000)
    torch.testing.assert_close(x_t, math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * noise, atol=1e-6, rtol=0)
    # Statistics: mean √ᾱ·0.7, std √(1 − ᾱ); 5 standard errors.
    std = math.sqrt(1 - alpha_bar)
    assert x_t.mean().item() == pytest.approx(math.sqrt(alpha_bar) * 0.7, abs=5 * std / math.sqrt(x_t.numel()))
    assert x_t.std().item() == pytest.approx(std, abs=5 * std / math.sqrt(2 * x_t.numel()))


def test_q_sample_per_sample_steps():
    diffusion = GaussianDiffusion(steps=10)
    x0 = torch.ones(3, 1, 1, 4)
    noise = torch.zeros_like(x0)
    t = torch.tensor([0, 4, 9])
    out = diffusion.q_sample(x0, t, noise)
    expected = torch.tensor([_closed_form_alpha_bar(i, 10) for i in (0, 4)] + [0.0]).sqrt()
    expected[2] = diffusion.alphas_cumprod[9].sqrt()  # the capped last step
    torch.testing.assert_close(out[:, 0, 0, 0], expected.float(), atol=1e-7, rtol=0)
    assert (out == out[:, :, :, :1]).all()


@pytest.mark.parametrize("t", [1, 2, 3])
def test_posterior_matches_bayes_rule(t):
    """q(x_{t−1} | x_t, x₀) ∝ q(x_{t−1} | x₀) q(x_t | x_{t−1}): a product of two Gaussians in x_{t−1},
    N(√ᾱ_{t−1} x₀, 1 − ᾱ_{t−1}) and N(x_t / √α_t, β_t / α_t), computed here from the closed-form ᾱ."""
    steps = 5
    ab = [_closed_form_alpha_bar(i, steps) for i in range(steps)]
    ab_prev, alpha = ab[t - 1], ab[t] / ab[t - 1]
    beta = 1 - alpha
    precision = 1 / (1 - ab_prev) + alpha / beta
    x0, x_t = 0.8, -1.3
    mean = (math.sqrt(ab_prev) * x0 / (1 - ab_prev) + math.sqrt(alpha) * x_t / beta) / precision

    diffusion = GaussianDiffusion(steps=steps)
    got_mean, got_var, got_log_var = diffusion.q_posterior_mean_variance(
        torch.full((1, 3), x0, dtype=torch.float64), torch.full((1, 3), x_t, dtype=torch.float64), torch.tensor([t])
    )
    assert torch.allclose(got_mean, torch.tensor(mean, dtype=torch.float64), atol=1e-9, rtol=0)
    assert got_var.item() == pytest.approx(1 / precision, abs=1e-12)
    assert got_log_var.item() == pytest.approx(math.log(1 / precision), abs=1e-9)


def test_posterior_at_step_zero_is_x0_and_log_variance_is_clipped():
    diffusion = GaussianDiffusion(steps=5)
    x0, x_t = torch.tensor([[0.8]], dtype=torch.float64), torch.tensor([[-1.3]], dtype=torch.float64)
    mean, var, log_var = diffusion.q_posterior_mean_variance(x0, x_t, torch.tensor([0]))
    assert mean.item() == pytest.approx(0.8, abs=1e-12)
    assert var.item() == 0.0
    # log β̃_0 = −∞ is replaced by log β̃_1 (as in the original implementation).
    assert log_var.item() == pytest.approx(math.log(diffusion.posterior_variance[1].item()), abs=1e-12)


# ---- samplers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [1000, 50])
def test_samplers_return_the_predicted_x0(steps):
    diffusion = GaussianDiffusion(steps=steps)
    x0 = torch.randn(3, 5, 1, 7, generator=_generator(5))
    model_fn = lambda x, t: x0  # noqa: E731
    ddpm = diffusion.p_sample_loop(model_fn, x0.shape, generator=_generator())
    ddim = diffusion.ddim_sample_loop(model_fn, x0.shape, generator=_generator(), steps=min(steps, 50), eta=0.0)
    torch.testing.assert_close(ddpm, x0, atol=1e-5, rtol=0)
    torch.testing.assert_close(ddim, x0, atol=1e-5, rtol=0)


def test_ddim_with_all_steps_and_eta_one_is_ddpm():
    """At η = 1 with every step, σ_t² = β̃_t and the DDIM mean is the posterior mean: the same draws
    give the same samples; both reproduce the data distribution N(MU, SIGMA²)."""
    diffusion = GaussianDiffusion(steps=1000)
    model_fn = _ideal_denoiser(diffusion)
    ddpm = diffusion.p_sample_loop(model_fn, (N_SAMPLES, 1), generator=_generator(3))
    ddim = diffusion.ddim_sample_loop(model_fn, (N_SAMPLES, 1), generator=_generator(3), steps=1000, eta=1.0)
    torch.testing.assert_close(ddim, ddpm, atol=1e-4, rtol=0)  # measured 5e-6 (float32 over 1000 steps)
    assert ddpm.mean().item() == pytest.approx(MU, abs=0.015)  # 4 standard errors
    assert ddpm.std().item() == pytest.approx(SIGMA, abs=0.01)  # measured 0.499


def test_ddim_fifty_steps_reproduces_the_data_distribution():
    diffusion = GaussianDiffusion(steps=1000)
    x = diffusion.ddim_sample_loop(_ideal_denoiser(diffusion), (N_SAMPLES, 1), generator=_generator(1), steps=50)
    assert x.mean().item() == pytest.approx(MU, abs=0.015)
    # Deterministic DDIM with 50 of 1000 steps shrinks the spread slightly (measured 0.487; 0.501 with
    # all 1000 steps).
    assert x.std().item() == pytest.approx(SIGMA, abs=0.025)


def test_model_is_called_with_base_timesteps_when_respaced():
    diffusion = GaussianDiffusion(steps=100)
    seen = []

    def model_fn(x, t):
        assert t.dtype == torch.long and t.shape == (2,) and (t == t[0]).all()
        seen.append(int(t[0]))
        return torch.zeros_like(x)

    diffusion.ddim_sample_loop(model_fn, (2, 3), generator=_generator(), steps=10)
    kept = space_timesteps(100, 10)
    assert seen == list(reversed(kept))
    assert kept == (0, 11, 22, 33, 44, 55, 66, 77, 88, 99)
    # Respacing composes: DDIM on an already respaced process still reports base indices.
    seen.clear()
    diffusion.respace(20).ddim_sample_loop(model_fn, (2, 3), generator=_generator(), steps=[0, 5, 19])
    base = space_timesteps(100, 20)
    assert seen == [base[19], base[5], base[0]]


def test_respaced_process_keeps_alpha_bar_at_the_kept_steps():
    base = GaussianDiffusion(steps=1000)
    kept = space_timesteps(1000, 50)
    spaced = base.respace(50)
    assert spaced.num_timesteps == 50 and spaced.timestep_map.tolist() == list(kept)
    torch.testing.assert_close(spaced.alphas_cumprod, base.alphas_cumprod[list(kept)], atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.cumprod(1 - spaced.betas, 0), spaced.alphas_cumprod, atol=1e-12, rtol=0)
    # Keeping every step changes nothing.
    full = base.respace(1000)
    torch.testing.assert_close(full.betas, base.betas, atol=1e-12, rtol=0)
    torch.testing.assert_close(full.posterior_variance, base.posterior_variance, atol=1e-12, rtol=0)


def test_respaced_p_sample_loop_and_fifty_step_process():
    """T = 50 works both as its own process (MDM's fine-tuned model) and as 50 steps of T = 1000."""
    x0 = torch.randn(2, 4, generator=_generator(2))
    for diffusion in (GaussianDiffusion(steps=50), GaussianDiffusion(steps=1000).respace(50)):
        assert diffusion.num_timesteps == 50
        out = diffusion.p_sample_loop(lambda x, t: x0, x0.shape, generator=_generator())
        torch.testing.assert_close(out, x0, atol=1e-5, rtol=0)


def test_space_timesteps():
    assert space_timesteps(1000, "ddim50") == tuple(range(0, 1000, 20))
    assert space_timesteps(10, 10) == tuple(range(10))
    # Sections of 100 steps: 10 of the first, 15 of the second, 20 of the third, ends included.
    kept = space_timesteps(300, [10, 15, 20])
    assert len(kept) == 45 and kept[:10] == tuple(range(0, 100, 11))
    assert (kept[10], kept[24], kept[25], kept[-1]) == (100, 199, 200, 299)
    assert space_timesteps(300, "10,15,20") == kept
    assert space_timesteps(1000, 50)[:3] == (0, 20, 41) and space_timesteps(1000, 50)[-1] == 999


def test_same_generator_same_samples():
    diffusion = GaussianDiffusion(steps=50)
    model_fn = _ideal_denoiser(diffusion)
    for sample in (
        lambda g: diffusion.p_sample_loop(model_fn, (4, 3), generator=g),
        lambda g: diffusion.ddim_sample_loop(model_fn, (4, 3), generator=g, steps=10, eta=0.5),
    ):
        assert torch.equal(sample(_generator(7)), sample(_generator(7)))
        assert not torch.equal(sample(_generator(7)), sample(_generator(8)))


def test_options_progress_clip_and_model_kwargs():
    diffusion = GaussianDiffusion(steps=20, schedule="linear")
    visited = []

    def progress(steps):
        for i in steps:
            visited.append(i)
            yield i

    out = diffusion.p_sample_loop(
        lambda x, t, scale: scale * torch.ones_like(x),
        (2, 3),
        generator=_generator(),
        progress=progress,
        clip_denoised=True,
        model_kwargs={"scale": 5.0},
    )
    assert visited == list(range(19, -1, -1))
    torch.testing.assert_close(out, torch.ones(2, 3), atol=1e-5, rtol=0)  # x̂₀ = 5 clamped to 1


def test_bad_inputs_are_named():
    diffusion = GaussianDiffusion(steps=10)
    x0 = torch.zeros(2, 3)
    cases = [
        (lambda: GaussianDiffusion(schedule="sigmoid"), "schedule"),
        (lambda: GaussianDiffusion(steps=1), "steps"),
        (lambda: GaussianDiffusion(steps=True), "steps"),
        (lambda: GaussianDiffusion(steps=10, schedule="linear"), "steps"),
        (lambda: GaussianDiffusion(steps=10, use_timesteps=[0, 10]), "use_timesteps"),
        (lambda: diffusion.respace([3]), "timesteps"),
        (lambda: diffusion.respace(11), "section_counts"),
        (lambda: space_timesteps(10, [0]), "section_counts"),
        (lambda: space_timesteps(10, "ddim7"), "section_counts"),
        (lambda: space_timesteps(0, 1), "num_timesteps"),
        (lambda: diffusion.q_sample(x0, torch.tensor([0, 10]), x0), "t"),
        (lambda: diffusion.q_sample(x0, torch.tensor([0.0, 1.0]), x0), "t"),
        (lambda: diffusion.q_sample(x0, torch.tensor([0]), x0), "t"),
        (lambda: diffusion.q_sample(x0, torch.tensor([0, 1]), torch.zeros(2, 4)), "noise"),
        (lambda: diffusion.q_sample(torch.zeros(2, 3, dtype=torch.long), torch.tensor([0, 1]), x0), "x0"),
        (lambda: diffusion.q_posterior_mean_variance(x0, torch.zeros(3, 3), torch.tensor([0, 1])), "x_t"),
        (lambda: diffusion.p_sample_loop("model", (2, 3), generator=_generator()), "model_fn"),
        (lambda: diffusion.p_sample_loop(lambda x, t: x[:1], (2, 3), generator=_generator()), "model_fn"),
        (lambda: diffusion.p_sample_loop(lambda x, t: x, (2, 0), generator=_generator()), "shape"),
        (lambda: diffusion.p_sample_loop(lambda x, t: x, (2, 3), generator=0), "generator"),
        (lambda: diffusion.p_sample_loop(lambda x, t: x, (2, 3), generator=_generator(), progress=1), "progress"),
        (lambda: diffusion.ddim_sample_loop(lambda x, t: x, (2, 3), generator=_generator(), eta=1.5), "eta"),
        (lambda: diffusion.ddim_sample_loop(lambda x, t: x, (2, 3), generator=_generator(), steps=11), "steps"),
        (lambda: diffusion.ddim_sample_loop(lambda x, t: x, (2, 3), generator=_generator(), steps=1), "steps"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=rf"^{name}\b"):
            call()


def test_per_sample_generators_make_a_sample_independent_of_its_batch():
    diffusion = GaussianDiffusion(steps=20)

    def model_fn(x, t):
        return 0.5 * x  # any deterministic, sample-wise model

    def draw(seeds, **kwargs):
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        return diffusion.ddim_sample_loop(model_fn, (len(seeds), 3, 4), generator=generators, steps=5, eta=1.0, **kwargs)

    together = draw([7, 8, 9])
    torch.testing.assert_close(draw([8]), together[1:2], atol=0, rtol=0)
    torch.testing.assert_close(draw([9, 7]), together[[2, 0]], atol=0, rtol=0)
    ancestral = diffusion.p_sample_loop(model_fn, (2, 3), generator=[torch.Generator().manual_seed(1)] * 2)
    assert ancestral.shape == (2, 3)
    with pytest.raises(ValueError, match="sequence of B = 3"):
        diffusion.p_sample_loop(model_fn, (3, 2), generator=[torch.Generator()])
