"""MDM: shapes, CFG, masks, and equality with the original's math on an original-layout checkpoint.

The reference forward below is written from the original code (GuyTevet/motion-diffusion-model,
model/mdm.py) in its seq-first layout, with hand-written attention, layer norm and GELU, in float64.
"""

import json
import math

import pytest
import torch

from networks.mdm import MDM

pytestmark = pytest.mark.usefixtures("one_thread")

D, FF, LAYERS, HEADS = 16, 24, 2, 4
CLIP_DIM, BERT_DIM = 512, 768


# ---------------------------------------------------------------------------------------------
# The original's parameters, by hand, and its forward in seq-first layout.


def _original_state_dict(*, arch, text_dim, njoints=263, nfeats=1, max_len=64, seed=0, text_weights=True):
    """A state dict with the original's key names and shapes, random values (fan-in scaled)."""
    g = torch.Generator().manual_seed(seed)

    def w(out_f, in_f):
        return torch.randn(out_f, in_f, generator=g) / math.sqrt(in_f)

    def b(n):
        return 0.1 * torch.randn(n, generator=g)

    sd = {
        "input_process.poseEmbedding.weight": w(D, njoints * nfeats),
        "input_process.poseEmbedding.bias": b(D),
        "embed_timestep.time_embed.0.weight": w(D, D),
        "embed_timestep.time_embed.0.bias": b(D),
        "embed_timestep.time_embed.2.weight": w(D, D),
        "embed_timestep.time_embed.2.bias": b(D),
        "embed_text.weight": w(D, text_dim),
        "embed_text.bias": b(D),
        "output_process.poseFinal.weight": w(njoints * nfeats, D),
        "output_process.poseFinal.bias": b(njoints * nfeats),
    }
    # Garbage sinusoid tables: the original's loader drops them (fixed, recomputed).
    pe = torch.randn(max_len, 1, D, generator=g)
    sd["sequence_pos_encoder.pe"] = pe
    sd["embed_timestep.sequence_pos_encoder.pe"] = pe
    stack = "seqTransEncoder" if arch == "trans_enc" else "seqTransDecoder"
    attns = ("self_attn",) if arch == "trans_enc" else ("self_attn", "multihead_attn")
    norms = ("norm1", "norm2") if arch == "trans_enc" else ("norm1", "norm2", "norm3")
    for i in range(LAYERS):
        p = f"{stack}.layers.{i}."
        for a in attns:
            sd[p + a + ".in_proj_weight"] = w(3 * D, D)
            sd[p + a + ".in_proj_bias"] = b(3 * D)
            sd[p + a + ".out_proj.weight"] = w(D, D)
            sd[p + a + ".out_proj.bias"] = b(D)
        sd[p + "linear1.weight"] = w(FF, D)
        sd[p + "linear1.bias"] = b(FF)
        sd[p + "linear2.weight"] = w(D, FF)
        sd[p + "linear2.bias"] = b(D)
        for n in norms:
            sd[p + n + ".weight"] = 1.0 + b(D)
            sd[p + n + ".bias"] = b(D)
    if text_weights:  # what a checkpoint saved without the original's del_clip would carry
        sd["clip_model.token_embedding.weight"] = torch.randn(10, 8, generator=g)
        sd["clip_model.positional_embedding"] = torch.randn(77, 8, generator=g)
    return sd


def _sinusoid_float32(max_len, d):
    """The original PositionalEncoding table, computed in float32 as it does, `[max_len, d]`."""
    position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2).float() * (-math.log(10000.0) / d))
    pe = torch.zeros(max_len, d)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


def _linear(x, sd, name):
    return x @ sd[name + ".weight"].T + sd[name + ".bias"]


def _layer_norm(x, sd, name, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * sd[name + ".weight"] + sd[name + ".bias"]


def _gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _attention(q_in, kv_in, sd, name, key_padding):
    """nn.MultiheadAttention math, seq-first: q_in [Sq, B, d], kv_in [Sk, B, d], key_padding [B, Sk]."""
    w, bias = sd[name + ".in_proj_weight"], sd[name + ".in_proj_bias"]
    q = q_in @ w[:D].T + bias[:D]
    k = kv_in @ w[D : 2 * D].T + bias[D : 2 * D]
    v = kv_in @ w[2 * D :].T + bias[2 * D :]
    dh = D // HEADS

    def heads(t):  # [S, B, d] -> [B, H, S, dh]
        return t.reshape(t.shape[0], t.shape[1], HEADS, dh).permute(1, 2, 0, 3)

    scores = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(dh)  # [B, H, Sq, Sk]
    if key_padding is not None:
        scores = scores.masked_fill(key_padding[:, None, None, :], float("-inf"))
    out = (scores.softmax(-1) @ heads(v)).permute(2, 0, 1, 3).reshape(q_in.shape[0], q_in.shape[1], D)
    return _linear(out, sd, name + ".out_proj")


def _feed_forward(x, sd, p):
    return _linear(_gelu(_linear(x, sd, p + "linear1")), sd, p + "linear2")


def _reference_forward(
    sd, *, arch, x, t, text, text_padding=None, frame_padding=None, uncond=False, emb_trans_dec=False, max_len=64
):
    """The original MDM.forward (eval mode, dropout off) on a state dict; returns [B, J, F, T] float64.

    text: [B, Dt] pooled embedding or [B, L, Dt] token states; text_padding [B, L] / frame_padding
    [B, T] are True where padded.
    """
    sd = {k: v.double() for k, v in sd.items()}
    pe = _sinusoid_float32(max_len, D).double()
    bs, njoints, nfeats, nframes = x.shape
    time_emb = _linear(torch.nn.functional.silu(_linear(pe[t], sd, "embed_timestep.time_embed.0")), sd,
                       "embed_timestep.time_embed.2")[None]  # [1, bs, d]
    enc_text = text.double()
    enc_text = enc_text[None] if enc_text.dim() == 2 else enc_text.permute(1, 0, 2)  # [L, bs, Dt]
    if uncond:
        enc_text = torch.zeros_like(enc_text)
    emb = _linear(enc_text, sd, "embed_text") + time_emb  # [L, bs, d]
    frames = _linear(x.double().permute(3, 0, 1, 2).reshape(nframes, bs, njoints * nfeats), sd,
                     "input_process.poseEmbedding")  # [T, bs, d]
    lead = torch.zeros(bs, 1, dtype=torch.bool)
    if arch == "trans_enc":
        xseq = torch.cat((emb, frames), 0)
        xseq = xseq + pe[: xseq.shape[0], None]
        mask = None if frame_padding is None else torch.cat((lead, frame_padding), 1)
        for i in range(LAYERS):
            p = f"seqTransEncoder.layers.{i}."
            xseq = _layer_norm(xseq + _attention(xseq, xseq, sd, p + "self_attn", mask), sd, p + "norm1")
            xseq = _layer_norm(xseq + _feed_forward(xseq, sd, p), sd, p + "norm2")
        out = xseq[1:]
    else:
        xseq = torch.cat((time_emb, frames), 0) if emb_trans_dec else frames
        xseq = xseq + pe[: xseq.shape[0], None]
        mask = frame_padding
        if emb_trans_dec and mask is not None:
            mask = torch.cat((lead, mask), 1)
        for i in range(LAYERS):
            p = f"seqTransDecoder.layers.{i}."
            xseq = _layer_norm(xseq + _attention(xseq, xseq, sd, p + "self_attn", mask), sd, p + "norm1")
            xseq = _layer_norm(xseq + _attention(xseq, emb, sd, p + "multihead_attn", text_padding), sd, p + "norm2")
            xseq = _layer_norm(xseq + _feed_forward(xseq, sd, p), sd, p + "norm3")
        out = xseq[1:] if emb_trans_dec else xseq
    out = _linear(out, sd, "output_process.poseFinal")
    return out.reshape(nframes, bs, njoints, nfeats).permute(1, 2, 3, 0)


# ---------------------------------------------------------------------------------------------
# Helpers.


def _small(**kwargs) -> MDM:
    cfg = dict(njoints=263, latent_dim=D, ff_size=FF, num_layers=LAYERS, num_heads=HEADS, dropout=0.0, max_len=64)
    cfg.update(kwargs)
    return MDM(**cfg)


def _inputs(b=3, t=7, arch="trans_enc", njoints=263, nfeats=1, seed=1, text_len=5, text="clip"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, njoints, nfeats, t, generator=g)
    steps = torch.randint(0, 50, (b,), generator=g)
    if text == "clip":
        return x, steps, torch.randn(b, CLIP_DIM, generator=g)
    states = torch.randn(b, text_len, BERT_DIM, generator=g)
    lengths = torch.randint(1, text_len + 1, (b,), generator=g)
    lengths[0] = text_len
    padding = torch.arange(text_len)[None] >= lengths[:, None]
    return x, steps, (states, padding)


def _frame_padding(b, t, seed=2):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    lengths[0] = t - 2
    return torch.arange(t)[None] >= lengths[:, None]


def _write_checkpoint(directory, state, args, name="model000000100.pt"):
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(state, directory / name)
    (directory / "args.json").write_text(json.dumps(args))
    return directory / name


def _args(arch="trans_enc", text_encoder_type="clip", **extra):
    args = dict(
        dataset="humanml", arch=arch, latent_dim=D, layers=LAYERS, ff_size=FF, heads=HEADS,
        cond_mask_prob=0.1, text_encoder_type=text_encoder_type, emb_trans_dec=False,
        pos_embed_max_len=64, mask_frames=True, use_ema=False, lambda_vel=0.0, noise_schedule="cosine",
    )
    args.update(extra)
    return args


# ---------------------------------------------------------------------------------------------
# The original's layout and outputs.

CONFIGS = {
    "trans_enc-clip": dict(arch="trans_enc", text="clip", emb_trans_dec=False),
    "trans_dec-bert": dict(arch="trans_dec", text="bert", emb_trans_dec=False),
    "trans_dec-bert-emb_trans_dec": dict(arch="trans_dec", text="bert", emb_trans_dec=True),
    "trans_dec-clip": dict(arch="trans_dec", text="clip", emb_trans_dec=False),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_state_dict_has_the_original_keys_and_shapes(name):
    cfg = CONFIGS[name]
    text_dim = CLIP_DIM if cfg["text"] == "clip" else BERT_DIM
    model = _small(arch=cfg["arch"], text_embed_dim=text_dim, emb_trans_dec=cfg["emb_trans_dec"])
    original = _original_state_dict(arch=cfg["arch"], text_dim=text_dim, text_weights=False)
    ours = model.state_dict()
    assert sorted(ours) == sorted(original)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in original.items()}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("masked", [False, True], ids=["no-frame-mask", "frame-mask"])
def test_original_checkpoint_reproduces_the_original_forward(tmp_path, name, masked):
    cfg = CONFIGS[name]
    encoder = "clip" if cfg["text"] == "clip" else "bert"
    text_dim = CLIP_DIM if encoder == "clip" else BERT_DIM
    state = _original_state_dict(arch=cfg["arch"], text_dim=text_dim)
    path = _write_checkpoint(
        tmp_path, state, _args(arch=cfg["arch"], text_encoder_type=encoder, emb_trans_dec=cfg["emb_trans_dec"])
    )
    model = MDM.from_original_checkpoint(path)
    assert not model.training and model.arch == cfg["arch"] and model.text_embed_dim == text_dim

    x, steps, text = _inputs(b=3, t=9, text=cfg["text"])
    steps[1] = 49  # high steps index the far end of the sinusoid table
    frame_padding = _frame_padding(3, 9) if masked else None
    states, text_padding = (text, None) if isinstance(text, torch.Tensor) else text
    with torch.no_grad():
        for uncond in (False, True):
            ours = model(x, steps, text, frame_mask=None if frame_padding is None else ~frame_padding,
                         force_uncond=uncond)
            ref = _reference_forward(
                state, arch=cfg["arch"], x=x, t=steps, text=states, text_padding=text_padding,
                frame_padding=frame_padding, uncond=uncond, emb_trans_dec=cfg["emb_trans_dec"],
            )
            assert ours.shape == (3, 263, 1, 9)
            # Measured max |diff| ≤ 2.0e-6 over these cases (outputs up to ≈ 4): float32 vs the float64 reference.
            torch.testing.assert_close(ours.double(), ref, atol=1e-5, rtol=0)


def test_joint_feature_layout_matches_the_original():
    """nfeats > 1: frames are flattened joint-major like the original's permute/reshape."""
    state = _original_state_dict(arch="trans_enc", text_dim=CLIP_DIM, njoints=5, nfeats=3, text_weights=False)
    model = _small(njoints=5, nfeats=3).eval()
    tables = {k for k in state if k.endswith("sequence_pos_encoder.pe")}  # garbage; the model's are exact
    missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if k not in tables}, strict=False)
    assert set(missing) == tables and not unexpected
    x, steps, text = _inputs(b=2, t=6, njoints=5, nfeats=3)
    with torch.no_grad():
        ours = model(x, steps, text)
    ref = _reference_forward(state, arch="trans_enc", x=x, t=steps, text=text)
    torch.testing.assert_close(ours.double(), ref, atol=1e-5, rtol=0)


def test_ema_checkpoint_selects_model_or_model_avg(tmp_path):
    plain = _original_state_dict(arch="trans_enc", text_dim=CLIP_DIM, seed=0)
    averaged = _original_state_dict(arch="trans_enc", text_dim=CLIP_DIM, seed=1)
    x, steps, text = _inputs()

    def output(state):
        with torch.no_grad():
            return _reference_forward(state, arch="trans_enc", x=x, t=steps, text=text).float()

    ema_dir = tmp_path / "ema"
    path = _write_checkpoint(ema_dir, {"model": plain, "model_avg": averaged}, _args(use_ema=True))
    with torch.no_grad():
        # args.json's use_ema picks the average, as the original sampler does; explicit flags override.
        torch.testing.assert_close(
            MDM.from_original_checkpoint(path)(x, steps, text), output(averaged), atol=1e-5, rtol=0
        )
        torch.testing.assert_close(
            MDM.from_original_checkpoint(path, use_ema=False)(x, steps, text), output(plain), atol=1e-5, rtol=0
        )
        _write_checkpoint(ema_dir, {"model": plain, "model_avg": averaged}, _args(use_ema=False))
        torch.testing.assert_close(MDM.from_original_checkpoint(path)(x, steps, text), output(plain), atol=1e-5, rtol=0)
        torch.testing.assert_close(
            MDM.from_original_checkpoint(path, use_ema=True)(x, steps, text), output(averaged), atol=1e-5, rtol=0
        )

    plain_path = _write_checkpoint(tmp_path / "plain", plain, _args())
    with pytest.raises(ValueError, match="model_avg"):
        MDM.from_original_checkpoint(plain_path, use_ema=True)
    only_model = _write_checkpoint(tmp_path / "only_model", {"model": plain}, _args())
    with pytest.raises(ValueError, match="model_avg"):
        MDM.from_original_checkpoint(only_model, use_ema=True)


def test_checkpoint_with_a_longer_stored_sinusoid_table_loads(tmp_path):
    """The original drops the stored tables because older models saved 5000 rows; so does the loader."""
    state = _original_state_dict(arch="trans_enc", text_dim=CLIP_DIM, max_len=5000)
    model = MDM.from_original_checkpoint(_write_checkpoint(tmp_path, state, _args(pos_embed_max_len=64)))
    assert model.max_len == 64


def test_mismatched_architecture_lists_the_keys(tmp_path):
    state = _original_state_dict(arch="trans_enc", text_dim=CLIP_DIM)
    path = _write_checkpoint(tmp_path, state, _args(arch="trans_dec"))
    with pytest.raises(ValueError, match="missing keys") as info:
        MDM.from_original_checkpoint(path)
    message = str(info.value)
    assert "seqTransDecoder.layers.0.multihead_attn.in_proj_weight" in message  # missing
    assert "seqTransEncoder.layers.0.self_attn.in_proj_weight" in message  # unexpected

    _write_checkpoint(tmp_path, state, _args(layers=LAYERS + 1))
    with pytest.raises(ValueError, match=rf"seqTransEncoder\.layers\.{LAYERS}\.linear1\.weight"):
        MDM.from_original_checkpoint(path)

    _write_checkpoint(tmp_path, state, _args(ff_size=FF * 2))
    with pytest.raises(ValueError, match=r"shape mismatches.*linear1\.weight: \(24, 16\) vs \(48, 16\)"):
        MDM.from_original_checkpoint(path)

    # A BERT args.json with a CLIP-width text projection.
    dec_state = _original_state_dict(arch="trans_dec", text_dim=CLIP_DIM)
    _write_checkpoint(tmp_path, dec_state, _args(arch="trans_dec", text_encoder_type="bert"))
    with pytest.raises(ValueError, match=r"embed_text\.weight: \(16, 512\) vs \(16, 768\)"):
        MDM.from_original_checkpoint(path)


@pytest.mark.parametrize(
    "extra, match",
    [
        (dict(arch="gru"), "arch"),
        (dict(unconstrained=True), "unconstrained"),
        (dict(dataset="humanact12"), "dataset"),
        (dict(text_encoder_type="t5"), "text_encoder_type"),
        (dict(text_encoder_type="bert"), "trans_dec"),
        (dict(context_len=20, pred_len=40), "prefix completion"),
        (dict(emb_policy="concat"), "emb_policy"),
    ],
)
def test_unsupported_original_args_raise(tmp_path, extra, match):
    state = _original_state_dict(arch="trans_enc", text_dim=CLIP_DIM)
    path = _write_checkpoint(tmp_path, state, _args(**extra))
    with pytest.raises(ValueError, match=match):
        MDM.from_original_checkpoint(path)


def test_missing_checkpoint_files_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="model000000100.pt"):
        MDM.from_original_checkpoint(tmp_path / "model000000100.pt")
    torch.save({}, tmp_path / "model000000100.pt")
    with pytest.raises(FileNotFoundError, match="args.json"):
        MDM.from_original_checkpoint(tmp_path / "model000000100.pt")


def test_kit_dataset_has_251_channels(tmp_path):
    state = _original_state_dict(arch="trans_enc", text_dim=CLIP_DIM, njoints=251)
    model = MDM.from_original_checkpoint(_write_checkpoint(tmp_path, state, _args(dataset="kit")))
    assert model.njoints == 251


# ---------------------------------------------------------------------------------------------
# Behaviour.


@pytest.mark.parametrize(
    "arch, text, emb_trans_dec",
    [
        ("trans_enc", "clip", False),
        ("trans_dec", "bert", False),
        ("trans_dec", "bert", True),
        ("trans_dec", "clip", False),
    ],
)
def test_output_shape(arch, text, emb_trans_dec):
    model = _small(arch=arch, text_embed_dim=CLIP_DIM if text == "clip" else BERT_DIM, emb_trans_dec=emb_trans_dec)
    x, steps, emb = _inputs(b=2, t=11, text=text)
    assert model(x, steps, emb).shape == (2, 263, 1, 11)
    assert model(x[..., :1], steps, emb).shape == (2, 263, 1, 1)


def test_paper_configuration_builds():
    model = MDM()
    assert (model.latent_dim, len(model.seqTransEncoder.layers), model.text_embed_dim) == (512, 8, 512)
    assert model.max_frames == 4999  # the condition token takes one row of the table


def test_cfg_drop_probability_in_training():
    """Each sample's output is exactly the conditional or the unconditional one; ~p of them uncond."""
    p, b = 0.25, 4000
    model = _small(cond_mask_prob=p)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 263, 1, 4, generator=g).expand(b, -1, -1, -1)
    steps = torch.full((b,), 10)
    text = torch.randn(1, CLIP_DIM, generator=g).expand(b, -1)
    with torch.no_grad():
        model.eval()
        cond, uncond = model(x, steps, text), model(x, steps, text, force_uncond=True)
        assert (cond - uncond).abs().amax() > 1e-2
        model.train()
        out = model(x, steps, text, generator=torch.Generator().manual_seed(1))
    dist_cond = (out - cond).flatten(1).abs().amax(1)
    dist_uncond = (out - uncond).flatten(1).abs().amax(1)
    assert torch.minimum(dist_cond, dist_uncond).max() < 1e-5  # nothing in between
    dropped = (dist_uncond < dist_cond).double().mean().item()
    sigma = math.sqrt(p * (1 - p) / b)  # 0.0068
    assert abs(dropped - p) < 4 * sigma, dropped


def test_cfg_drop_is_seeded_and_off_in_eval():
    model = _small(cond_mask_prob=0.5)
    x, steps, text = _inputs(b=32)
    with torch.no_grad():
        a = model(x, steps, text, generator=torch.Generator().manual_seed(3))
        b = model(x, steps, text, generator=torch.Generator().manual_seed(3))
        c = model(x, steps, text, generator=torch.Generator().manual_seed(4))
        assert torch.equal(a, b) and not torch.equal(a, c)
        torch.manual_seed(5)
        d = model(x, steps, text)
        torch.manual_seed(5)
        assert torch.equal(d, model(x, steps, text))  # torch's global RNG when no generator is given
        model.eval()
        cond = model(x, steps, text)
        assert torch.equal(cond, model(x, steps, text, generator=torch.Generator().manual_seed(3)))
    never = _small(cond_mask_prob=0.0)
    with torch.no_grad():
        # Equal up to the eval-mode fast path's rounding.
        torch.testing.assert_close(never(x, steps, text), never.eval()(x, steps, text), atol=1e-6, rtol=0)


@pytest.mark.parametrize("arch, text", [("trans_enc", "clip"), ("trans_dec", "bert")])
def test_guided_is_uncond_plus_scaled_difference(arch, text):
    model = _small(arch=arch, text_embed_dim=CLIP_DIM if text == "clip" else BERT_DIM).eval()
    x, steps, emb = _inputs(b=3, text=text)
    with torch.no_grad():
        cond = model(x, steps, emb)
        uncond = model(x, steps, emb, force_uncond=True)
        torch.testing.assert_close(model.guided(x, steps, emb, 2.5), uncond + 2.5 * (cond - uncond), atol=0, rtol=0)
        torch.testing.assert_close(model.guided(x, steps, emb, scale=1.0), cond, atol=1e-6, rtol=0)
        torch.testing.assert_close(model.guided(x, steps, emb, scale=0.0), uncond, atol=0, rtol=0)
        scales = torch.tensor([0.0, 1.0, 3.0])
        per_sample = model.guided(x, steps, emb, scale=scales)
        for i, s in enumerate(scales.tolist()):
            torch.testing.assert_close(per_sample[i], uncond[i] + s * (cond[i] - uncond[i]), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "arch, text, emb_trans_dec",
    [("trans_enc", "clip", False), ("trans_dec", "bert", False), ("trans_dec", "bert", True)],
)
def test_masked_frames_do_not_change_valid_outputs(arch, text, emb_trans_dec):
    text_dim = CLIP_DIM if text == "clip" else BERT_DIM
    model = _small(arch=arch, text_embed_dim=text_dim, emb_trans_dec=emb_trans_dec).eval()
    x, steps, emb = _inputs(b=3, t=8, text=text)
    valid = ~_frame_padding(3, 8)
    x2 = x + 5.0 * (~valid)[:, None, None, :]  # change only the padded frames
    with torch.no_grad():
        y, y2 = model(x, steps, emb, frame_mask=valid), model(x2, steps, emb, frame_mask=valid)
        unmasked, unmasked2 = model(x, steps, emb), model(x2, steps, emb)
    mask = valid[:, None, None, :].expand_as(y)
    torch.testing.assert_close(y2[mask], y[mask], atol=1e-6, rtol=0)
    assert (unmasked2[mask] - unmasked[mask]).abs().max() > 1e-3  # without the mask they leak
    # An all-valid mask is the same as no mask.
    torch.testing.assert_close(model(x, steps, emb, frame_mask=torch.ones(3, 8, dtype=torch.bool)), unmasked,
                               atol=1e-6, rtol=0)


def test_padded_text_tokens_are_ignored():
    model = _small(arch="trans_dec", text_embed_dim=BERT_DIM).eval()
    x, steps, (states, padding) = _inputs(b=3, text="bert")
    assert padding.any()
    states2 = states + 3.0 * padding[..., None]
    with torch.no_grad():
        torch.testing.assert_close(model(x, steps, (states2, padding)), model(x, steps, (states, padding)),
                                   atol=1e-6, rtol=0)
        # A pooled embedding is a one-token memory for trans_dec.
        torch.testing.assert_close(
            model(x, steps, states[:, 0]), model(x, steps, (states[:, :1], torch.zeros(3, 1, dtype=torch.bool))),
            atol=1e-6, rtol=0,
        )


@pytest.mark.parametrize("arch, text", [("trans_enc", "clip"), ("trans_dec", "bert")])
def test_unconditional_output_ignores_the_text(arch, text):
    model = _small(arch=arch, text_embed_dim=CLIP_DIM if text == "clip" else BERT_DIM).eval()
    x, steps, emb = _inputs(b=3, text=text, seed=1)
    _, _, other = _inputs(b=3, text=text, seed=7)
    with torch.no_grad():
        torch.testing.assert_close(model(x, steps, emb, force_uncond=True), model(x, steps, other, force_uncond=True),
                                   atol=1e-6, rtol=0)
        assert (model(x, steps, emb) - model(x, steps, other)).abs().max() > 1e-3


def test_samples_in_a_batch_are_independent():
    model = _small().eval()
    x, steps, text = _inputs(b=4)
    with torch.no_grad():
        y = model(x, steps, text)
        torch.testing.assert_close(model(x[2:3], steps[2:3], text[2:3]), y[2:3], atol=1e-6, rtol=0)


@pytest.mark.parametrize("arch, text", [("trans_enc", "clip"), ("trans_dec", "bert")])
def test_gradients_reach_every_parameter(arch, text):
    model = _small(arch=arch, text_embed_dim=CLIP_DIM if text == "clip" else BERT_DIM, cond_mask_prob=0.0)
    x, steps, emb = _inputs(b=2, text=text)
    x.requires_grad_(True)
    model(x, steps, emb).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_same_seed_same_model():
    torch.manual_seed(0)
    a = _small().eval()
    torch.manual_seed(0)
    b = _small().eval()
    x, steps, text = _inputs()
    with torch.no_grad():
        assert torch.equal(a(x, steps, text), b(x, steps, text))


# ---------------------------------------------------------------------------------------------
# Bad inputs.


def test_bad_x_raises_naming_x():
    model = _small()
    x, steps, text = _inputs(b=2, t=5)
    for bad in (x[0], x[:, :262], torch.randn(2, 263, 2, 5), x.long(), torch.randn(2, 263, 1, 64), [1.0]):
        with pytest.raises(ValueError, match=r"\bx\b"):
            model(bad, steps, text)


def test_bad_timesteps_raise_naming_timesteps():
    model = _small()
    x, steps, text = _inputs(b=2)
    for bad in (steps.float(), steps[:1], steps[:, None], torch.tensor([0, 64]), torch.tensor([-1, 0]), [0, 1]):
        with pytest.raises(ValueError, match="timesteps"):
            model(x, bad, text)


def test_bad_text_embed_raises_naming_text_embed():
    enc = _small()
    dec = _small(arch="trans_dec", text_embed_dim=BERT_DIM)
    x, steps, clip = _inputs(b=2)
    _, _, (states, padding) = _inputs(b=2, text="bert")
    cases = [
        (enc, (states[..., :CLIP_DIM], padding)),  # per-token tuple for trans_enc
        (enc, [clip]),
        (enc, clip[:, :100]),
        (enc, clip[:1]),
        (enc, clip.long()),
        (dec, torch.randn(2, 5, BERT_DIM)),  # states without their mask
        (dec, (states,)),
        (dec, (states, padding.long())),
        (dec, (states, padding[:, :2])),
        (dec, (states[:1], padding[:1])),
        (dec, (states, torch.ones_like(padding))),  # a sample with no token left
        (dec, (states[..., :CLIP_DIM], padding)),
    ]
    for model, bad in cases:
        with pytest.raises(ValueError, match="text_embed"):
            model(x, steps, bad)


def test_bad_masks_and_flags_raise():
    model = _small()
    x, steps, text = _inputs(b=2, t=5)
    for bad in (torch.ones(2, 5), torch.ones(2, 4, dtype=torch.bool), torch.zeros(2, 5, dtype=torch.bool)):
        with pytest.raises(ValueError, match="frame_mask"):
            model(x, steps, text, frame_mask=bad)
    with pytest.raises(ValueError, match="force_uncond"):
        model(x, steps, text, force_uncond=torch.tensor(True))
    for bad in (torch.ones(3), "2.5", True):
        with pytest.raises(ValueError, match="scale"):
            model.guided(x, steps, text, scale=bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(latent_dim=18), "latent_dim"),  # not divisible by 4 heads
        (dict(latent_dim=0), "latent_dim"),
        (dict(num_layers=1.5), "num_layers"),
        (dict(arch="gru"), "arch"),
        (dict(activation="tanh"), "activation"),
        (dict(dropout=1.0), "dropout"),
        (dict(cond_mask_prob=-0.1), "cond_mask_prob"),
        (dict(max_len=1), "max_len"),
        (dict(emb_trans_dec=True), "emb_trans_dec"),
        (dict(text_embed_dim=True), "text_embed_dim"),
    ],
)
def test_bad_constructor_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _small(**kwargs)
