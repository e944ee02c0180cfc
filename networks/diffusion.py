"""Gaussian diffusion for denoisers that predict the clean sample x₀, kept apart from the network.

The process and its samplers only ever call `model_fn(x_t, t, **model_kwargs) -> x̂₀` with `x_t` of the
sample's shape and `t` the `[B]` long tensor of *original* timestep indices, so any callable works
(classifier-free guidance is a wrapper built by the caller).

    forward    q(x_t | x₀)          = N(√ᾱ_t x₀, (1 − ᾱ_t) I)
    posterior  q(x_{t−1} | x_t, x₀) = N(c₁ x₀ + c₂ x_t, β̃_t I),
               c₁ = β_t √ᾱ_{t−1} / (1 − ᾱ_t),  c₂ = (1 − ᾱ_{t−1}) √α_t / (1 − ᾱ_t),
               β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)
    DDPM       x_{t−1} = posterior mean with x₀ := x̂₀, plus √β̃_t · noise (none at t = 0): the
               "fixed small" variance
    DDIM       x_{t−1} = √ᾱ_{t−1} x̂₀ + √(1 − ᾱ_{t−1} − σ_t²) ε̂ + σ_t noise,
               ε̂ = (x_t − √ᾱ_t x̂₀) / √(1 − ᾱ_t),  σ_t = η √((1 − ᾱ_{t−1}) / (1 − ᾱ_t)) √(1 − ᾱ_t / ᾱ_{t−1})

Index t = 0 … T−1 is the (t+1)-th noising step, ᾱ_{−1} = 1. A process can be *respaced* onto a subset
of its steps (kept steps keep their ᾱ, β is re-derived between them), so a model trained with
T = 1000 samples with 50 DDIM steps; `timestep_map` turns respaced indices back into the model's.

References: Ho et al., NeurIPS 2020 (DDPM); Nichol & Dhariwal, ICML 2021 (cosine schedule, respacing);
Song et al., ICLR 2021 (DDIM, eq. 12); Tevet et al., ICLR 2023 (MDM: x₀ prediction, fixed-small
variance, cosine schedule, T = 1000, and T = 50 for its fine-tuned model).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch

__all__ = ["GaussianDiffusion", "beta_schedule", "cosine_alpha_bar", "space_timesteps"]

COSINE_OFFSET = 0.008
"""s of the cosine schedule: keeps β small near t = 0 (Nichol & Dhariwal, eq. 17)."""

MAX_BETA = 0.999
"""Cap on β: the cosine ᾱ reaches 0 at the last step, which would make β_T = 1 (a singular step)."""

SCHEDULES = ("cosine", "linear")

ModelFn = Callable[..., torch.Tensor]


def cosine_alpha_bar(u: torch.Tensor) -> torch.Tensor:
    """Un-normalised cosine ᾱ at diffusion time u = t/T ∈ [0, 1]: cos²((u + s)/(1 + s) · π/2)."""
    return torch.cos((u + COSINE_OFFSET) / (1 + COSINE_OFFSET) * (math.pi / 2)) ** 2


def beta_schedule(name: str, steps: int) -> torch.Tensor:
    """β_t for t = 0 … steps−1, float64 `[steps]`.

    "cosine": β_t = min(1 − ᾱ((t+1)/T) / ᾱ(t/T), 0.999) with `cosine_alpha_bar` (Nichol & Dhariwal).
    "linear": Ho et al.'s 1e-4 … 0.02 for T = 1000, both ends scaled by 1000/T so that any T gives a
    similar process.
    """
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {name!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an int ≥ 2, got {steps!r}")
    if name == "cosine":
        alpha_bar = cosine_alpha_bar(torch.arange(steps + 1, dtype=torch.float64) / steps)
        return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=MAX_BETA)
    scale = 1000 / steps
    if 0.02 * scale > 1:
        raise ValueError(f"steps must be ≥ 20 for the linear schedule (its last β = 20/steps), got {steps}")
    return torch.linspace(1e-4 * scale, 0.02 * scale, steps, dtype=torch.float64)


def space_timesteps(num_timesteps: int, section_counts: int | str | Sequence[int]) -> tuple[int, ...]:
    """Timesteps of a `num_timesteps` process to keep when respacing it (Nichol & Dhariwal, sec. 4).

    The process is cut into `len(section_counts)` equal sections (the first `num_timesteps % n` one
    step longer) and `section_counts[k]` steps are taken evenly from section k, both of its ends
    included, by rounding a fractional stride. An int is one section; a string is either
    comma-separated counts ("10,15,20") or "ddimN": the integer stride of the DDIM paper that gives
    exactly N steps 0, stride, 2·stride, ….

    Returns:
        Sorted, distinct indices in [0, num_timesteps).
    """
    if isinstance(num_timesteps, bool) or not isinstance(num_timesteps, int) or num_timesteps < 1:
        raise ValueError(f"num_timesteps must be a positive int, got {num_timesteps!r}")
    if isinstance(section_counts, str) and section_counts.startswith("ddim"):
        desired = int(section_counts[len("ddim") :])
        for stride in range(1, num_timesteps + 1):
            if len(range(0, num_timesteps, stride)) == desired:
                return tuple(range(0, num_timesteps, stride))
        raise ValueError(
            f"section_counts {section_counts!r}: no integer stride gives {desired} of {num_timesteps} steps"
        )
    if isinstance(section_counts, str):
        section_counts = [int(count) for count in section_counts.split(",")]
    elif isinstance(section_counts, int) and not isinstance(section_counts, bool):
        section_counts = [section_counts]
    counts = list(section_counts)
    if not counts or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in counts):
        raise ValueError(f"section_counts must be positive ints, got {section_counts!r}")
    size_per, extra = divmod(num_timesteps, len(counts))
    kept: list[int] = []
    start = 0
    for k, count in enumerate(counts):
        size = size_per + (1 if k < extra else 0)
        if count > size:
            raise ValueError(f"section_counts: cannot take {count} steps from a section of {size} steps")
        stride = (size - 1) / (count - 1) if count > 1 else 1.0
        kept += [start + round(j * stride) for j in range(count)]
        start += size
    return tuple(sorted(set(kept)))


def _check_timesteps(timesteps: Iterable[int], num_timesteps: int, name: str) -> list[int]:
    kept = sorted({int(t) for t in timesteps})
    if len(kept) < 2 or kept[0] < 0 or kept[-1] >= num_timesteps:
        raise ValueError(f"{name} must hold ≥ 2 distinct steps in [0, {num_timesteps}), got {kept}")
    return kept


def _check_sample(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 1:
        raise ValueError(f"{name} must be a floating-point tensor [B, …], got {getattr(x, 'shape', type(x).__name__)}")


class GaussianDiffusion:
    """A discrete Gaussian diffusion process with x₀-predicting, fixed-small-variance sampling.

    Args:
        steps: T of the base process (MDM: 1000; its fine-tuned model: 50).
        schedule: "cosine" (MDM's) or "linear".
        use_timesteps: optional subset of base steps to keep (respacing); `None` keeps all. The
            respaced process has `len(use_timesteps)` steps and calls the model with base indices.

    Attributes (float64, `[num_timesteps]`, index = this process's step): `betas`, `alphas_cumprod`
    (ᾱ_t), `alphas_cumprod_prev` (ᾱ_{t−1}), `posterior_variance` (β̃_t), `posterior_log_variance_clipped`
    (log β̃_t with β̃_0 = 0 replaced by β̃_1), `posterior_mean_coef1`/`2` (c₁, c₂); `timestep_map`
    (long): base index of each step.
    """

    def __init__(self, *, steps: int = 1000, schedule: str = "cosine", use_timesteps: Iterable[int] | None = None):
        base_betas = beta_schedule(schedule, steps)
        self.schedule = schedule
        self.base_steps = steps
        kept = list(range(steps)) if use_timesteps is None else _check_timesteps(use_timesteps, steps, "use_timesteps")
        self.timestep_map = torch.tensor(kept, dtype=torch.long)
        alphas_cumprod = torch.cumprod(1 - base_betas, dim=0)[self.timestep_map]
        self.alphas_cumprod = alphas_cumprod
        self.alphas_cumprod_prev = torch.cat((alphas_cumprod.new_ones(1), alphas_cumprod[:-1]))
        # Kept steps keep their ᾱ; β spans the skipped ones (equal to base_betas when nothing is skipped).
        self.betas = 1 - alphas_cumprod / self.alphas_cumprod_prev
        self.num_timesteps = len(kept)
        self.sqrt_alphas_cumprod = alphas_cumprod.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1 - alphas_cumprod).sqrt()
        self.posterior_variance = self.betas * (1 - self.alphas_cumprod_prev) / (1 - alphas_cumprod)
        # β̃_0 = 0 (the last step lands exactly on the x₀ it is given): its log would be −∞, so step 0
        # borrows β̃_1.
        self.posterior_log_variance_clipped = torch.cat(
            (self.posterior_variance[1:2], self.posterior_variance[1:])
        ).log()
        self.posterior_mean_coef1 = self.betas * self.alphas_cumprod_prev.sqrt() / (1 - alphas_cumprod)
        self.posterior_mean_coef2 = (1 - self.alphas_cumprod_prev) * (1 - self.betas).sqrt() / (1 - alphas_cumprod)

    def __repr__(self) -> str:
        return (
            f"GaussianDiffusion(steps={self.base_steps}, schedule={self.schedule!r}, "
            f"num_timesteps={self.num_timesteps})"
        )

    def respace(self, timesteps: int | str | Sequence[int]) -> GaussianDiffusion:
        """This process on a subset of its steps: a count / section string (see `space_timesteps`) or
        explicit indices of this process. Respacing composes: the model still gets base indices."""
        if isinstance(timesteps, (int, str)):
            timesteps = space_timesteps(self.num_timesteps, timesteps)
        kept = _check_timesteps(timesteps, self.num_timesteps, "timesteps")
        return GaussianDiffusion(
            steps=self.base_steps, schedule=self.schedule, use_timesteps=self.timestep_map[kept].tolist()
        )

    # ---- forward process and posterior --------------------------------------------------------------

    def _check_t(self, t: torch.Tensor, x: torch.Tensor) -> None:
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.shape != x.shape[:1]:
            raise ValueError(f"t must be a long tensor of shape [{x.shape[0]}] (one step per sample), got {t!r}")
        if t.numel() and (t.min() < 0 or t.max() >= self.num_timesteps):
            raise ValueError(f"t must lie in [0, {self.num_timesteps}), got values {t.min().item()} … {t.max().item()}")

    @staticmethod
    def _extract(table: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """`table[t]` as `[B, 1, …, 1]` broadcastable against `x`, in x's dtype (cast on the CPU first:
        some devices have no float64)."""
        values = table.to(x.dtype).to(x.device)[t.to(x.device)]
        return values.view(-1, *([1] * (x.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Sample x_t ~ q(x_t | x₀) = √ᾱ_t x₀ + √(1 − ᾱ_t) noise.

        Args:
            x0: `[B, …]` clean samples.
            t: `[B]` long step indices of this process.
            noise: standard normal noise of x0's shape.
        """
        _check_sample("x0", x0)
        if not isinstance(noise, torch.Tensor) or noise.shape != x0.shape:
            got = getattr(noise, "shape", noise)
            raise ValueError(f"noise must be a tensor of x0's shape {tuple(x0.shape)}, got {got}")
        self._check_t(t, x0)
        return self._extract(self.sqrt_alphas_cumprod, t, x0) * x0 + self._extract(
            self.sqrt_one_minus_alphas_cumprod, t, x0
        ) * noise

    def q_posterior_mean_variance(
        self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, variance β̃_t and clipped log-variance of q(x_{t−1} | x_t, x₀), each `[B, …]` (the
        variances broadcast as `[B, 1, …, 1]`)."""
        _check_sample("x0", x0)
        if not isinstance(x_t, torch.Tensor) or x_t.shape != x0.shape:
            raise ValueError(f"x_t must be a tensor of x0's shape {tuple(x0.shape)}, got {getattr(x_t, 'shape', x_t)}")
        self._check_t(t, x0)
        mean = (
            self._extract(self.posterior_mean_coef1, t, x0) * x0
            + self._extract(self.posterior_mean_coef2, t, x0) * x_t
        )
        return (
            mean,
            self._extract(self.posterior_variance, t, x0),
            self._extract(self.posterior_log_variance_clipped, t, x0),
        )

    # ---- samplers ------------------------------------------------------------------------------------

    @torch.no_grad()
    def p_sample_loop(
        self,
        model_fn: ModelFn,
        shape: Sequence[int],
        *,
        generator: torch.Generator | Sequence[torch.Generator],
        progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
        clip_denoised: bool = False,
        model_kwargs: dict | None = None,
    ) -> torch.Tensor:
        """Ancestral DDPM sampling through all `num_timesteps` steps of this process.

        Args:
            model_fn: `(x_t [shape], t [B] long base indices, **model_kwargs) -> x̂₀ [shape]`.
            shape: `(B, …)` of the samples.
            generator: source of all noise (x_T and every step's), on the device to sample on: the same
                seed gives the same samples. A sequence of B generators gives each sample its own noise, so
                a sample does not depend on which others share its batch.
            progress: optional wrapper of the step iterable, e.g. `tqdm.tqdm`.
            clip_denoised: clamp x̂₀ to [−1, 1] (for data in that range; MDM: off).
            model_kwargs: extra keyword arguments for `model_fn` (conditioning).
        Returns:
            `[shape]` float32 samples x₀.
        """

        def step(x: torch.Tensor, x0_hat: torch.Tensor, i: int, noise: torch.Tensor) -> torch.Tensor:
            mean = float(self.posterior_mean_coef1[i]) * x0_hat + float(self.posterior_mean_coef2[i]) * x
            if i == 0:
                return mean
            return mean + math.exp(0.5 * float(self.posterior_log_variance_clipped[i])) * noise

        return self._loop(step, model_fn, shape, generator, progress, clip_denoised, model_kwargs)

    @torch.no_grad()
    def ddim_sample_loop(
        self,
        model_fn: ModelFn,
        shape: Sequence[int],
        *,
        generator: torch.Generator | Sequence[torch.Generator],
        steps: int | str | Sequence[int] = 50,
        eta: float = 0.0,
        progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
        clip_denoised: bool = False,
        model_kwargs: dict | None = None,
    ) -> torch.Tensor:
        """DDIM sampling on `steps` of this process's steps (Song et al., eq. 12).

        Args:
            steps: how many steps, evenly spaced by `space_timesteps` (or its section / "ddimN"
                string), or the explicit step indices of this process to visit.
            eta: 0 is the deterministic DDIM; 1 with all steps is ancestral DDPM.
            model_fn, shape, generator, progress, clip_denoised, model_kwargs: as in `p_sample_loop`.
        Returns:
            `[shape]` float32 samples x₀.
        """
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0 <= eta <= 1:
            raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")
        if isinstance(steps, int) and not isinstance(steps, bool) and not 2 <= steps <= self.num_timesteps:
            raise ValueError(f"steps must be in [2, {self.num_timesteps}], got {steps}")
        spaced = self.respace(steps)

        def step(x: torch.Tensor, x0_hat: torch.Tensor, i: int, noise: torch.Tensor) -> torch.Tensor:
            alpha_bar, alpha_bar_prev = float(spaced.alphas_cumprod[i]), float(spaced.alphas_cumprod_prev[i])
            eps = (x - math.sqrt(alpha_bar) * x0_hat) / math.sqrt(1 - alpha_bar)
            sigma = eta * math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev))
            # 1 − ᾱ_{t−1} − σ² = (1 − ᾱ_{t−1})² ᾱ_t / (ᾱ_{t−1} (1 − ᾱ_t)) ≥ 0 at η = 1 and larger for
            # smaller η: the clamp only absorbs round-off.
            x_prev = math.sqrt(alpha_bar_prev) * x0_hat + math.sqrt(max(1 - alpha_bar_prev - sigma**2, 0.0)) * eps
            return x_prev + sigma * noise if i > 0 else x_prev

        return spaced._loop(step, model_fn, shape, generator, progress, clip_denoised, model_kwargs)

    def _loop(
        self,
        step: Callable[[torch.Tensor, torch.Tensor, int, torch.Tensor], torch.Tensor],
        model_fn: ModelFn,
        shape: Sequence[int],
        generator: torch.Generator | Sequence[torch.Generator],
        progress: Callable[[Iterable[int]], Iterable[int]] | None,
        clip_denoised: bool,
        model_kwargs: dict | None,
    ) -> torch.Tensor:
        """Start from x_T ~ N(0, I) and apply `step(x_t, x̂₀, i, noise) -> x_{t−1}` for i = N−1 … 0.

        Every step draws its noise (also the last, which ignores it) so that samplers that agree step by
        step consume the generator identically."""
        if not callable(model_fn):
            raise ValueError(f"model_fn must be callable, got {type(model_fn).__name__}")
        shape = tuple(shape)
        if not shape or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape):
            raise ValueError(f"shape must be a non-empty tuple of positive ints (B, …), got {shape!r}")
        per_sample = not isinstance(generator, torch.Generator)
        generators = list(generator) if per_sample and isinstance(generator, Sequence) else [generator]
        if not all(isinstance(g, torch.Generator) for g in generators) or (per_sample and len(generators) != shape[0]):
            raise ValueError(f"generator must be a torch.Generator or a sequence of B = {shape[0]} of them")
        device = generators[0].device

        def noise() -> torch.Tensor:
            if not per_sample:
                return torch.randn(shape, generator=generator, device=device)
            return torch.stack([torch.randn(shape[1:], generator=g, device=device) for g in generators])

        if progress is not None and not callable(progress):
            raise ValueError(f"progress must be callable (e.g. tqdm.tqdm) or None, got {type(progress).__name__}")
        model_kwargs = {} if model_kwargs is None else model_kwargs
        x = noise()
        indices: Iterable[int] = range(self.num_timesteps - 1, -1, -1)
        for i in progress(indices) if progress is not None else indices:
            t = torch.full(shape[:1], int(self.timestep_map[i]), dtype=torch.long, device=device)
            x0_hat = model_fn(x, t, **model_kwargs)
            if not isinstance(x0_hat, torch.Tensor) or x0_hat.shape != shape:
                raise ValueError(f"model_fn must return x̂₀ of shape {shape}, got {getattr(x0_hat, 'shape', x0_hat)}")
            if clip_denoised:
                x0_hat = x0_hat.clamp(-1, 1)
            x = step(x, x0_hat.to(x.dtype), i, noise())
        return x
