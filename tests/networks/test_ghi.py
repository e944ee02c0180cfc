import pytest
import torch

from networks.ghi import GHIFusion, GHIOutput

pytestmark = pytest.mark.usefixtures("one_thread")

B, N_I, FRAMES, N_V = 3, 5, 4, 3  # IMU tokens, frames, video tokens per frame
IMU_DIM, VIDEO_DIM, DIM = 6, 12, 16


def _model(seed: int = 0, **kwargs) -> GHIFusion:
    torch.manual_seed(seed)
    cfg = dict(dim=DIM, num_heads=2, num_blocks=2, imu_dim=IMU_DIM, video_dim=VIDEO_DIM, dropout=0.1)
    cfg.update(kwargs)
    return GHIFusion(**cfg).eval()


def _inputs(seed: int = 0, b: int = B) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, N_I, IMU_DIM, generator=g), torch.randn(b, FRAMES, N_V, VIDEO_DIM, generator=g)


def test_shapes_of_every_path():
    net = _model()
    imu, video = _inputs()
    both = net(imu=imu, video=video)
    assert isinstance(both, GHIOutput)
    assert both.tokens.shape == (B, N_I + FRAMES, DIM)
    assert both.padding_mask.shape == (B, N_I + FRAMES) and both.padding_mask.dtype == torch.bool
    assert not both.padding_mask.any()
    assert both.num_imu_tokens == N_I
    assert len(both.gates) == 2 and all(g.shape == (B, N_I) for g in both.gates)

    imu_only = net(imu=imu, video=None)
    assert imu_only.tokens.shape == (B, N_I, DIM) and imu_only.num_imu_tokens == N_I
    assert all(torch.equal(g, torch.ones(B, N_I)) for g in imu_only.gates)  # no video: all weight on motion

    video_only = net(imu=None, video=video)
    assert video_only.tokens.shape == (B, FRAMES, DIM) and video_only.num_imu_tokens == 0
    assert video_only.gates == ()


def test_one_block_matches_the_documented_formulas():
    net = _model(num_blocks=1, dropout=0.0)
    block = net.blocks[0]
    imu, video = _inputs()
    out = net(imu=imu, video=video)

    m = net.imu_proj(imu)
    v = net.video_proj(video) + net.frame_embedding.pe[:FRAMES, 0][None, :, None]
    q = v.mean(dim=2)
    v = v.flatten(1, 2)
    r_m = block.norm_motion(m + block.motion_to_vision(m, v, v)[0])
    r_v = block.norm_vision(q + block.vision_to_motion(q, m, m)[0])
    s_v = r_v.mean(dim=1, keepdim=True).expand_as(r_m)
    g = torch.sigmoid(block.gate(torch.cat((r_m, s_v), dim=-1)))
    u = g * r_m + (1 - g) * s_v
    motion = block.norm_motion_out(u + block.ffn_motion(u))
    queries = block.norm_vision_out(r_v + block.ffn_vision(r_v))
    torch.testing.assert_close(out.tokens, torch.cat((motion, queries), dim=1), atol=1e-6, rtol=0)
    torch.testing.assert_close(out.gates[0], g[..., 0], atol=1e-6, rtol=0)
    # The frame embedding is the sinusoid table: frame 1, channels 0/1 = sin(1), cos(1).
    sin_cos_1 = torch.tensor([0.8414710, 0.5403023])
    torch.testing.assert_close(net.frame_embedding.pe[1, 0, :2], sin_cos_1, atol=1e-6, rtol=0)


@pytest.mark.parametrize("scale", [1.0, 1e4, -1e6])
def test_gates_stay_in_unit_interval(scale):
    net = _model()
    imu, video = _inputs(seed=1)
    out = net(imu=imu * scale, video=video * scale)
    assert torch.isfinite(out.tokens).all()
    for g in out.gates:
        assert ((g >= 0) & (g <= 1)).all()
    constant = net(imu=torch.full_like(imu, scale), video=torch.full_like(video, -scale))
    for g in constant.gates:
        assert ((g >= 0) & (g <= 1)).all()


def test_gate_is_not_trivially_saturated_at_init():
    out = _model()(imu=_inputs()[0], video=_inputs()[1])
    g = torch.stack(out.gates)
    assert 0.05 < g.min() and g.max() < 0.95


def test_sample_without_video_takes_the_imu_only_path_and_ignores_its_video():
    net = _model()
    imu, video = _inputs()
    frame_padding = torch.zeros(B, FRAMES, dtype=torch.bool)
    frame_padding[0] = True  # sample 0 has no video
    out = net(imu=imu, video=video, video_padding_mask=frame_padding)
    alone = net(imu=imu[:1], video=None)
    torch.testing.assert_close(out.tokens[0, :N_I], alone.tokens[0], atol=1e-6, rtol=0)
    assert out.padding_mask[0, N_I:].all() and not out.padding_mask[1:].any()
    assert torch.equal(out.gates[0][0], torch.ones(N_I))

    other_video = video.clone()
    other_video[0] = 1e3 * torch.randn(FRAMES, N_V, VIDEO_DIM, generator=torch.Generator().manual_seed(9))
    changed = net(imu=imu, video=other_video, video_padding_mask=frame_padding)
    valid = ~out.padding_mask
    torch.testing.assert_close(changed.tokens[valid], out.tokens[valid], atol=1e-6, rtol=0)


def test_sample_without_imu_takes_the_video_only_path_and_ignores_its_imu():
    net = _model()
    imu, video = _inputs()
    imu_padding = torch.zeros(B, N_I, dtype=torch.bool)
    imu_padding[1] = True  # sample 1 has no IMU
    out = net(imu=imu, video=video, imu_padding_mask=imu_padding)
    alone = net(imu=None, video=video[1:2])
    torch.testing.assert_close(out.tokens[1, N_I:], alone.tokens[0], atol=1e-6, rtol=0)
    assert out.padding_mask[1, :N_I].all()

    other_imu = imu.clone()
    other_imu[1] = -1e3
    changed = net(imu=other_imu, video=video, imu_padding_mask=imu_padding)
    valid = ~out.padding_mask
    torch.testing.assert_close(changed.tokens[valid], out.tokens[valid], atol=1e-6, rtol=0)


def test_padded_tokens_are_ignored():
    net = _model()
    imu, video = _inputs()
    imu_padding = torch.zeros(B, N_I, dtype=torch.bool)
    imu_padding[0, 3:] = True
    imu_padding[2, 1:] = True
    video_padding = torch.zeros(B, FRAMES, N_V, dtype=torch.bool)
    video_padding[0, 2:] = True  # padded frames
    video_padding[1, 1, 0] = True  # a single padded token
    video_padding[2, :, 2] = True
    out = net(imu=imu, video=video, imu_padding_mask=imu_padding, video_padding_mask=video_padding)
    assert torch.equal(out.padding_mask[:, :N_I], imu_padding)
    assert torch.equal(out.padding_mask[:, N_I:], video_padding.all(dim=2))

    g = torch.Generator().manual_seed(5)
    imu2, video2 = imu.clone(), video.clone()
    imu2[imu_padding] = 1e4 * torch.randn(int(imu_padding.sum()), IMU_DIM, generator=g)
    video2[video_padding] = float("nan")  # even non-finite padding must not leak
    changed = net(imu=imu2, video=video2, imu_padding_mask=imu_padding, video_padding_mask=video_padding)
    valid = ~out.padding_mask
    assert torch.isfinite(changed.tokens[valid]).all()
    torch.testing.assert_close(changed.tokens[valid], out.tokens[valid], atol=1e-6, rtol=0)
    for a, b in zip(changed.gates, out.gates):
        torch.testing.assert_close(a[~imu_padding], b[~imu_padding], atol=1e-6, rtol=0)


def test_frame_mask_equals_expanded_token_mask():
    net = _model()
    imu, video = _inputs()
    frames = torch.zeros(B, FRAMES, dtype=torch.bool)
    frames[:, -1] = True
    a = net(imu=imu, video=video, video_padding_mask=frames)
    b = net(imu=imu, video=video, video_padding_mask=frames[:, :, None].expand(-1, -1, N_V))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.padding_mask, b.padding_mask)


def test_samples_are_independent_and_frame_order_matters():
    net = _model()
    imu, video = _inputs()
    out = net(imu=imu, video=video).tokens
    torch.testing.assert_close(net(imu=imu[2:], video=video[2:]).tokens, out[2:], atol=1e-6, rtol=0)
    reversed_frames = net(imu=imu, video=video.flip(1)).tokens
    assert (reversed_frames[:, :N_I] - out[:, :N_I]).abs().max() > 1e-3  # the frame embedding orders time


def test_gradients_reach_both_projections_and_every_parameter():
    net = _model().train()
    imu, video = _inputs()
    out = net(imu=imu, video=video)
    (out.tokens.square().mean() + sum(g.mean() for g in out.gates)).backward()
    for proj in (net.imu_proj, net.video_proj):
        assert proj.weight.grad.abs().sum() > 0
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradients_stay_finite_with_samples_missing_a_modality():
    net = _model().train()
    imu, video = _inputs()
    imu_padding = torch.zeros(B, N_I, dtype=torch.bool)
    imu_padding[1] = True
    frame_padding = torch.zeros(B, FRAMES, dtype=torch.bool)
    frame_padding[0] = True
    out = net(imu=imu, video=video, imu_padding_mask=imu_padding, video_padding_mask=frame_padding)
    out.tokens[~out.padding_mask].square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_determinism():
    imu, video = _inputs()
    a, b = _model(seed=7), _model(seed=7)
    assert torch.equal(a(imu=imu, video=video).tokens, b(imu=imu, video=video).tokens)
    a.train(), b.train()
    torch.manual_seed(1)
    ta = a(imu=imu, video=video).tokens
    torch.manual_seed(1)
    tb = b(imu=imu, video=video).tokens
    assert torch.equal(ta, tb)
    assert not torch.equal(_model(seed=8)(imu=imu, video=video).tokens, a.eval()(imu=imu, video=video).tokens)


def test_bad_inputs_are_named():
    net = _model()
    imu, video = _inputs()
    frames_pad = torch.zeros(B, FRAMES, dtype=torch.bool)
    cases = [
        (dict(imu=torch.randn(B, N_I, IMU_DIM + 1), video=video), r"imu must have shape .*imu_dim=6"),
        (dict(imu=imu[0], video=video), r"imu must have shape"),
        (dict(imu=imu.long(), video=video), r"imu must be a floating-point"),
        (dict(imu=imu, video=torch.randn(B, FRAMES, N_V, VIDEO_DIM - 1)), r"video must have shape .*video_dim=12"),
        (dict(imu=imu, video=video.flatten(1, 2)), r"video must have shape"),
        (dict(imu=None, video=None), r"imu and video cannot both be None"),
        (dict(imu=imu[:2], video=video), r"same batch size"),
        (dict(imu=imu, video=torch.randn(B, 65, 1, VIDEO_DIM)), r"max_frames=64"),
        (dict(imu=imu, video=video, imu_padding_mask=torch.zeros(B, N_I)), r"imu_padding_mask"),
        (dict(imu=imu, video=video, imu_padding_mask=torch.zeros(B, N_I + 1).bool()), r"imu_padding_mask"),
        (dict(imu=imu, video=video, video_padding_mask=torch.zeros(B, FRAMES + 1).bool()), "video_padding_mask"),
        (dict(imu=imu, video=video, video_padding_mask=torch.zeros(B, FRAMES, N_V + 1).bool()), "video_padding_mask"),
        (dict(imu=imu, video=None, video_padding_mask=frames_pad), "video_padding_mask.*without video"),
        (dict(imu=None, video=video, imu_padding_mask=torch.zeros(B, N_I).bool()), "imu_padding_mask.*without imu"),
    ]
    for kwargs, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            net(**kwargs)
    neither = torch.zeros(B, N_I, dtype=torch.bool)
    neither[2] = True
    with pytest.raises(ValueError, match=r"samples \[2\] with neither"):
        net(imu=imu, video=None, imu_padding_mask=neither)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(dim=15), "dim"),
        (dict(dim=18, num_heads=4), "dim"),
        (dict(num_heads=0), "num_heads"),
        (dict(num_blocks=0), "num_blocks"),
        (dict(imu_dim=0), "imu_dim"),
        (dict(video_dim=2.0), "video_dim"),
        (dict(dropout=1.0), "dropout"),
        (dict(max_frames=0), "max_frames"),
    ],
)
def test_bad_constructor_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _model(**kwargs)


def test_constructor_is_keyword_only():
    with pytest.raises(TypeError):
        GHIFusion(16, 2, 2, 6, 12)  # type: ignore[misc]

