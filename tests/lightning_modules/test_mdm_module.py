"""MDMModule: loss wiring against hand-computed values, EMA, checkpoint contents, sampling."""

import functools
from pathlib import Path

import pytest
import torch
from torch import nn

from lightning_modules.mdm_module import MDMModule
from motion.humanml3d import FEATURE_DIM
from networks.diffusion import GaussianDiffusion
from networks.losses import acceleration_loss, masked_l2, velocity_loss
from networks.mdm import MDM

pytestmark = pytest.mark.usefixtures("one_thread")


class CaptionLengthEncoder(nn.Module):
    """A tiny frozen 'text encoder': each caption → a fixed 8-d vector (its length and character sums)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(8), requires_grad=False)

    def forward(self, captions):
        rows = [[len(c), sum(map(ord, c)) % 97, *(float(ord(ch)) / 100 for ch in (c + "      ")[:6])] for c in captions]
        return torch.tensor(rows, dtype=torch.float32, device=self.scale.device) * self.scale


class Oracle(nn.Module):
    """Stands in for MDM: predicts x0 plus a fixed offset pattern (so the loss terms are known)."""

    def __init__(self, x0, offset):
        super().__init__()
        self.x0, self.offset = x0, offset
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, x_t, timesteps, text_embed, frame_mask=None):
        return self.x0 + self.offset + 0 * self.weight


def tiny_module(**overrides) -> MDMModule:
    torch.manual_seed(0)
    net = MDM(latent_dim=16, ff_size=32, num_layers=1, num_heads=2, text_embed_dim=8, dropout=0.0)
    kwargs = dict(net=net, diffusion=GaussianDiffusion(steps=10), text_encoder=CaptionLengthEncoder(),
                  optimizer=functools.partial(torch.optim.AdamW, lr=1e-3))
    kwargs.update(overrides)
    return MDMModule(**kwargs)


def batch(frames=12, lengths=(12, 7), seed=0):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    motion = torch.randn(len(lengths), FEATURE_DIM, 1, frames, generator=generator)
    valid = (torch.arange(frames)[None] < lengths[:, None]).float()
    motion = motion * valid[:, None, None, :]
    contacts = (torch.rand(len(lengths), frames, 4, generator=generator) > 0.5).float() * valid[..., None]
    return {"motion": motion, "lengths": lengths, "text": ["a person walks", "someone jumps"][: len(lengths)],
            "contacts": contacts}


def test_feature_space_terms_equal_the_losses_and_the_weighted_sum():
    data = batch()
    t = torch.arange(FEATURE_DIM * 12, dtype=torch.float32).reshape(1, FEATURE_DIM, 1, 12)
    offset = 1e-3 * (t % 7) ** 2  # a non-linear offset: non-zero velocity and acceleration errors
    module = tiny_module(lambda_vel=0.5, lambda_acc=2.0)
    terms = module.loss_terms(data, Oracle(data["motion"], offset))
    prediction = data["motion"] + offset
    torch.testing.assert_close(terms["simple"], masked_l2(data["motion"], prediction, data["lengths"]))
    torch.testing.assert_close(terms["acc"], acceleration_loss(data["motion"], prediction, data["lengths"]))
    torch.testing.assert_close(terms["vel"], velocity_loss(data["motion"], prediction, data["lengths"]))
    torch.testing.assert_close(terms["loss"], terms["simple"] + 0.5 * terms["vel"] + 2.0 * terms["acc"])
    assert "pos" not in terms and "foot" not in terms  # positions are not recovered when nothing needs them
    exact = module.loss_terms(data, Oracle(data["motion"], torch.zeros_like(offset)))
    for name in ("simple", "vel", "acc", "loss"):
        torch.testing.assert_close(exact[name], torch.zeros(2), atol=0, rtol=0)


def test_a_constant_offset_costs_its_square_and_no_acceleration():
    data = batch()
    terms = tiny_module().loss_terms(data, Oracle(data["motion"], torch.full((1, FEATURE_DIM, 1, 12), 0.3)))
    torch.testing.assert_close(terms["simple"], torch.full((2,), 0.09), atol=1e-6, rtol=0)
    torch.testing.assert_close(terms["acc"], torch.zeros(2), atol=1e-6, rtol=0)


def test_position_space_terms_use_recovered_joints():
    data = batch()
    module = tiny_module(loss_space="positions", lambda_pos=1.0, lambda_foot=1.0)
    exact = module.loss_terms(data, Oracle(data["motion"], torch.zeros(1, FEATURE_DIM, 1, 12)))
    for name in ("simple", "vel", "acc", "pos"):
        torch.testing.assert_close(exact[name], torch.zeros(2), atol=1e-6, rtol=0)
    assert (exact["foot"] >= 0).all() and torch.isfinite(exact["foot"]).all()  # the truth's own foot speeds
    shifted = module.loss_terms(data, Oracle(data["motion"], torch.full((1, FEATURE_DIM, 1, 12), 0.1)))
    assert (shifted["pos"] > 0).all()
    joints = module.joints(data["motion"])
    assert joints.shape == (2, 12, 22, 3)


def test_padded_frames_do_not_change_the_terms():
    data = batch()
    garbage = dict(data, motion=data["motion"].clone())
    garbage["motion"][1, :, :, 7:] = 1e3
    offset = torch.full((1, FEATURE_DIM, 1, 12), 0.2)
    clean = tiny_module().loss_terms(data, Oracle(data["motion"], offset))
    dirty = tiny_module().loss_terms(garbage, Oracle(garbage["motion"], offset))
    for name in ("simple", "vel", "acc"):
        torch.testing.assert_close(dirty[name], clean[name], atol=1e-6, rtol=0)


def test_ema_follows_the_network_after_each_step():
    module = tiny_module(ema_decay=0.9)
    module.on_train_batch_end(None, None, 0)  # the first update copies the weights
    first = [p.clone() for p in module.net.parameters()]
    with torch.no_grad():
        for p in module.net.parameters():
            p.add_(1.0)
    module.on_train_batch_end(None, None, 1)
    for averaged, before, now in zip(module.ema.module.parameters(), first, module.net.parameters()):
        torch.testing.assert_close(averaged, 0.9 * before + 0.1 * now, atol=1e-6, rtol=0)
    assert module.sampling_net is module.ema.module
    assert tiny_module(ema_decay=None).sampling_net is not None


def test_checkpoints_leave_the_frozen_text_encoder_out_and_load_back():
    module = tiny_module()
    state = module.state_dict()
    assert not any(key.startswith("text_encoder.") for key in state)
    assert any(key.startswith("ema.") for key in state) and "feature_mean" in state
    other = tiny_module()
    other.load_state_dict(state)  # strict: the encoder's weights come from the module itself
    for key, value in state.items():
        torch.testing.assert_close(other.state_dict()[key], value)


def test_sampling_is_seeded_masked_and_has_both_samplers():
    module = tiny_module()
    lengths = torch.tensor([9, 5])
    draw = lambda seed, **kw: module.sample(["a person walks", "someone jumps"], lengths,  # noqa: E731
                                            generator=torch.Generator().manual_seed(seed), **kw)
    motion = draw(1)
    assert motion.shape == (2, FEATURE_DIM, 1, 9) and torch.isfinite(motion).all()
    assert (motion[1, ..., 5:] == 0).all() and (motion[1, ..., :5] != 0).any()
    torch.testing.assert_close(draw(1), motion, atol=0, rtol=0)
    assert not torch.equal(draw(2), motion)
    ddim = draw(1, ddim_steps=4)
    assert ddim.shape == motion.shape and not torch.equal(ddim, motion)


@pytest.mark.parametrize(
    "overrides,message",
    [({"loss_space": "joints"}, "loss_space"), ({"lambda_acc": -1.0}, "lambda_acc"),
     ({"lambda_vel": float("nan")}, "lambda_vel"), ({"ema_decay": 1.0}, "ema_decay"), ({"fps": 0.0}, "fps"),
     ({"nonfinite_loss": "ignore"}, "nonfinite_loss")],
)
def test_bad_settings_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_module(**overrides)


def test_the_finetune_experiment_loads_an_original_checkpoint_and_trains(tmp_path):
    """experiment=mdm_lacc_finetune: an original trans_dec / DistilBERT checkpoint, fine-tuned with L_acc."""
    from hydra import compose, initialize_config_dir
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizer

    from lightning_modules import runtime
    from tests.networks.test_mdm import _args, _original_state_dict, _write_checkpoint

    original = _original_state_dict(arch="trans_dec", text_dim=768, max_len=128)  # the clips have 80 frames
    args = _args(arch="trans_dec", text_encoder_type="bert", pos_embed_max_len=128)
    checkpoint = _write_checkpoint(tmp_path / "mdm", original, args)
    bert = tmp_path / "bert"
    bert.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "person", "walks", "runs", "jumps", "sits", "down"]
    (bert / "vocab.txt").write_text("\n".join(words) + "\n")
    DistilBertTokenizer(str(bert / "vocab.txt")).save_pretrained(bert)
    torch.manual_seed(0)
    DistilBertModel(DistilBertConfig(vocab_size=len(words), dim=768, n_layers=1, n_heads=2, hidden_dim=32,
                                     max_position_embeddings=64)).save_pretrained(bert)
    root = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(config_dir=str(root), version_base="1.3"):
        cfg = compose("train", overrides=[
            "experiment=mdm_lacc_finetune", f"model.net.path={checkpoint}", f"model.text_encoder.path_or_hub_id={bert}",
            "data.train_motion.num_clips=8", "data.val_motion.num_clips=4", "data.test_motion.num_clips=4",
            "data.batch_size=4"])
    datamodule, module = runtime.instantiate_data_and_model(cfg)
    assert module.net.arch == "trans_dec" and module.diffusion.num_timesteps == 50
    torch.testing.assert_close(module.net.state_dict()["input_process.poseEmbedding.weight"],
                               original["input_process.poseEmbedding.weight"])
    datamodule.setup("fit")
    data = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    module.train()
    terms = module.loss_terms(data, module.net)
    terms["loss"].mean().backward()
    assert torch.isfinite(terms["loss"]).all() and module.net.input_process.poseEmbedding.weight.grad.abs().sum() > 0


def test_sampling_without_padding_equals_sampling_with_an_all_valid_mask():
    module = tiny_module()
    draw = lambda lengths: module.sample(["a person walks", "someone jumps"], torch.tensor(lengths),  # noqa: E731
                                         generator=torch.Generator().manual_seed(3), ddim_steps=4)
    unpadded = draw([6, 6])
    net, original = module.sampling_net, module.sampling_net.forward
    calls = []
    net.forward = lambda *args, **kwargs: calls.append(kwargs.get("frame_mask")) or original(*args, **kwargs)
    try:
        torch.testing.assert_close(draw([6, 6]), unpadded, atol=0, rtol=0)
        assert calls and all(mask is None for mask in calls)  # the unmasked path
        draw([6, 4])
        assert calls[-1] is not None
    finally:
        del net.forward
    masked = module.sampling_net(torch.zeros(2, FEATURE_DIM, 1, 6), torch.tensor([3, 3]), torch.zeros(2, 8),
                                 frame_mask=torch.ones(2, 6, dtype=torch.bool))
    unmasked = module.sampling_net(torch.zeros(2, FEATURE_DIM, 1, 6), torch.tensor([3, 3]), torch.zeros(2, 8))
    torch.testing.assert_close(masked, unmasked, atol=1e-5, rtol=0)
