import pytest
import timm
import torch

from networks.video_encoder import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    InternVideo2Adapter,
    TimmViTVideoEncoder,
    VideoFeatures,
    sample_frame_indices,
    tokens_from_backbone_output,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# A 2-block ViT on 32×32 frames with 8×8 patches: N = 16 tokens per frame, D = 32.
TINY = dict(img_size=32, patch_size=8, depth=2, embed_dim=32, num_heads=2)
N_TOKENS, DIM = 16, 32


def _encoder(seed: int = 0, **kwargs) -> TimmViTVideoEncoder:
    torch.manual_seed(seed)
    cfg = dict(model_name="vit_tiny_patch16_224", model_kwargs=TINY)
    cfg.update(kwargs)
    return TimmViTVideoEncoder(**cfg)


def _frames(b: int = 2, f: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, f, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


# --- frame sampling -------------------------------------------------------------------------------------


def test_sampler_centres_16_frames_at_2_fps():
    # 10 s at 30 FPS: step 15 frames (0.5 s), span 225, start (299 − 225) / 2 = 37.
    idx = sample_frame_indices(300, 30.0)
    assert idx.dtype == torch.int64
    assert idx.tolist() == [37 + 15 * k for k in range(16)]


def test_sampler_non_integer_step_rounds_half_up():
    # 25 FPS: step 12.5, span 187.5, start (249 − 187.5) / 2 = 30.75:
    # positions 30.75, 43.25, 55.75, 68.25 → 31, 43, 56, 68.
    assert sample_frame_indices(250, 25.0)[:4].tolist() == [31, 43, 56, 68]
    # One centred frame: position (4 − 1) / 2 = 1.5 → 2 and (6 − 1) / 2 = 2.5 → 3 (half-to-even would give 2).
    assert sample_frame_indices(4, 1.0, target_frames=1, target_fps=1.0).tolist() == [2]
    assert sample_frame_indices(6, 1.0, target_frames=1, target_fps=1.0).tolist() == [3]


def test_sampler_exact_fit_and_short_clip():
    assert sample_frame_indices(16, 2.0).tolist() == list(range(16))  # span 15 = clip
    assert sample_frame_indices(20, 2.0).tolist() == list(range(2, 18))  # start (19 − 15) / 2 = 2
    # 2 s at 30 FPS is shorter than the 7.5 s span: linspace(0, 59, 16) = 59k / 15, rounded half up.
    assert sample_frame_indices(60, 30.0).tolist() == [0, 4, 8, 12, 16, 20, 24, 28, 31, 35, 39, 43, 47, 51, 55, 59]
    # 5 frames: positions 4k / 15 → frames repeat.
    assert sample_frame_indices(5, 30.0).tolist() == [0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4]
    assert sample_frame_indices(1, 30.0).tolist() == [0] * 16


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(num_frames_total=0, fps=30.0), "num_frames_total"),
        (dict(num_frames_total=2.5, fps=30.0), "num_frames_total"),
        (dict(num_frames_total=10, fps=0.0), "fps"),
        (dict(num_frames_total=10, fps=float("nan")), "fps"),
        (dict(num_frames_total=10, fps=30.0, target_frames=0), "target_frames"),
        (dict(num_frames_total=10, fps=30.0, target_fps=-2.0), "target_fps"),
    ],
)
def test_sampler_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        sample_frame_indices(**kwargs)


# --- timm ViT encoder -----------------------------------------------------------------------------------


def test_shapes_and_flattened_tokens():
    enc = _encoder(layers=(0, -1))
    out = enc(_frames(b=2, f=3))
    assert isinstance(out, VideoFeatures)
    assert [tuple(x.shape) for x in out.layers] == [(2, 3, N_TOKENS, DIM)] * 2
    assert out.tokens.shape == (2, 3 * N_TOKENS, DIM)
    # Frame-major: frame f's tokens are rows f·N … (f + 1)·N − 1.
    assert torch.equal(out.tokens[:, N_TOKENS : 2 * N_TOKENS], out.layers[-1][:, 1])
    assert enc.embed_dim == DIM and enc.tokens_per_frame == N_TOKENS


def test_last_layer_equals_per_frame_forward_features_with_documented_normalisation():
    enc = _encoder()
    frames = _frames(b=2, f=3)
    out = enc(frames)
    # Default weights' config: mean = std = 0.5, so x ↦ 2x − 1; class token dropped.
    single = enc.backbone.forward_features((2 * frames[1, 2] - 1)[None])[:, 1:]
    torch.testing.assert_close(out.layers[-1][1, 2], single[0], atol=1e-5, rtol=0)


def test_mean_std_override():
    enc = _encoder(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    frames = _frames(b=1, f=2)
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    expected = enc.backbone.forward_features((frames[0] - mean) / std)[:, 1:]
    torch.testing.assert_close(enc(frames).layers[0][0], expected, atol=1e-5, rtol=0)


def test_layers_follow_requested_order_and_differ():
    enc = _encoder(layers=(0, -1))
    frames = _frames()
    first, last = enc(frames).layers
    enc.layer_indices = (1, 0)  # same weights, the order reversed
    swapped = enc(frames).layers
    assert torch.equal(swapped[0], last) and torch.equal(swapped[1], first)
    assert (first - last).abs().max() > 1e-2


def test_frozen_by_default():
    # Dropout and drop-path configured on purpose: a frozen encoder must never apply them.
    enc = _encoder(model_kwargs=dict(TINY, proj_drop_rate=0.5, drop_path_rate=0.5))
    assert not any(p.requires_grad for p in enc.parameters())
    parent = torch.nn.Sequential(enc).train()
    assert not enc.training and not any(m.training for m in enc.modules())
    frames = _frames().requires_grad_(True)
    a, b = parent(frames).tokens, parent(frames).tokens
    assert not a.requires_grad
    assert torch.equal(a, b)


def test_unfrozen_trains():
    enc = _encoder(frozen=False).train()
    assert enc.training and all(p.requires_grad for p in enc.parameters())
    enc(_frames()).tokens.square().mean().backward()
    assert enc.backbone.patch_embed.proj.weight.grad.abs().sum() > 0


def test_deterministic_construction_and_forward():
    frames = _frames()
    assert torch.equal(_encoder(seed=3)(frames).tokens, _encoder(seed=3)(frames).tokens)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_round_trip(tmp_path, suffix):
    source = _encoder(seed=1)
    path = tmp_path / f"vit{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in source.backbone.state_dict().items()}, str(path))
    else:
        torch.save({"state_dict": source.backbone.state_dict()}, path)  # nested, as training checkpoints are
    loaded = _encoder(seed=2, pretrained_path=path)
    frames = _frames()
    assert torch.equal(loaded(frames).tokens, source(frames).tokens)
    assert not torch.equal(_encoder(seed=2)(frames).tokens, source(frames).tokens)


def test_local_weights_with_classifier_head_load(tmp_path):
    torch.manual_seed(4)
    classifier = timm.create_model("vit_tiny_patch16_224", num_classes=10, **TINY)
    path = tmp_path / "with_head.pth"
    torch.save(classifier.state_dict(), path)
    enc = _encoder(pretrained_path=path)
    frames = _frames(b=1, f=1)
    expected = classifier.forward_features(2 * frames[0] - 1)[:, 1:]
    torch.testing.assert_close(enc(frames).layers[0][0], expected, atol=1e-5, rtol=0)


def test_mismatched_weights_file_is_an_error(tmp_path):
    deeper = _encoder(model_kwargs=dict(TINY, depth=3))
    path = tmp_path / "deeper.pth"
    torch.save(deeper.backbone.state_dict(), path)
    with pytest.raises(ValueError, match="pretrained_path.*unexpected keys.*blocks.2"):
        _encoder(pretrained_path=path)
    with pytest.raises(ValueError, match="pretrained_path"):
        _encoder(pretrained_path=tmp_path / "absent.pth")


@pytest.mark.parametrize(
    "frames",
    [
        (torch.rand(2, 3, 3, 32, 32) * 255).to(torch.uint8),
        torch.rand(3, 3, 32, 32),
        torch.rand(2, 3, 1, 32, 32),
        torch.rand(2, 3, 3, 64, 64),
        torch.rand(2, 0, 3, 32, 32),
    ],
    ids=["uint8", "4d", "one-channel", "wrong-size", "no-frames"],
)
def test_bad_frames(frames):
    with pytest.raises(ValueError, match="frames"):
        _encoder()(frames)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(model_name="not_a_model"), "model_name"),
        (dict(model_name="resnet18", model_kwargs={}), "model_name"),
        (dict(layers=(2,)), "layers"),
        (dict(layers=(-3,)), "layers"),
        (dict(layers=(-1, 1)), "layers"),
        (dict(layers=()), "layers"),
        (dict(frozen="yes"), "frozen"),
        (dict(mean=(0.5, 0.5)), "mean"),
        (dict(std=(0.5, 0.0, 0.5)), "std"),
    ],
)
def test_bad_constructor_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _encoder(**kwargs)


def test_constructor_is_keyword_only():
    with pytest.raises(TypeError):
        TimmViTVideoEncoder("vit_tiny_patch16_224")  # type: ignore[misc]


# --- InternVideo2 (model unavailable: loading errors and the output contract only) ---------------------


def test_internvideo2_absent_path(tmp_path):
    with pytest.raises(ValueError, match="path"):
        InternVideo2Adapter(tmp_path / "absent")
    with pytest.raises(ValueError, match="config.json"):
        InternVideo2Adapter(tmp_path)  # a directory, but no model in it


def test_backbone_output_contract():
    b, f, n, d = 2, 4, 3, 5
    patches = torch.randn(b, f, n, d)
    flat = torch.cat((torch.randn(b, 1, d), patches.flatten(1, 2)), dim=1)  # class token first, frame-major
    assert torch.equal(tokens_from_backbone_output(flat, num_frames=f, num_prefix_tokens=1), patches)
    assert torch.equal(tokens_from_backbone_output((flat, None), num_frames=f, num_prefix_tokens=1), patches)
    assert torch.equal(tokens_from_backbone_output(patches, num_frames=f, num_prefix_tokens=1), patches)
    with pytest.raises(ValueError, match="backbone output"):
        tokens_from_backbone_output(flat[:, 1:], num_frames=f, num_prefix_tokens=2)  # 11 not divisible by 4
    with pytest.raises(ValueError, match="backbone output"):
        tokens_from_backbone_output(patches, num_frames=f + 1, num_prefix_tokens=0)
    with pytest.raises(ValueError, match="backbone output"):
        tokens_from_backbone_output("tokens", num_frames=f, num_prefix_tokens=0)
