import pytest
import torch

from networks.deepconvlstm import DeepConvLSTM


def _small(**kwargs) -> DeepConvLSTM:
    cfg = dict(in_channels=6, num_classes=11, conv_filters=8, lstm_hidden=16)
    cfg.update(kwargs)
    return DeepConvLSTM(**cfg)


def test_output_shape():
    net = _small()
    assert net(torch.randn(4, 40, 6)).shape == (4, 11)
    # The shortest accepted window: 4 unpadded (5, 1) convs leave exactly one step.
    assert net(torch.randn(2, 17, 6)).shape == (2, 11)


def test_parameter_count_matches_paper_configuration():
    net = DeepConvLSTM(in_channels=6, num_classes=11)
    conv1 = 1 * 64 * 5 * 1 + 64  # in=1, out=64, kernel (5, 1), bias           = 384
    conv_rest = 3 * (64 * 64 * 5 * 1 + 64)  # 3 layers of in=64, out=64        = 61_632
    # nn.LSTM layer: 4 gates x (W_ih [H, in] + W_hh [H, H] + b_ih [H] + b_hh [H])
    lstm1 = 4 * (128 * (64 * 6) + 128 * 128 + 128 + 128)  # in = 64 filters x 6 = 263_168
    lstm2 = 4 * (128 * 128 + 128 * 128 + 128 + 128)  #                          = 132_096
    linear = 128 * 11 + 11  #                                                  = 1_419
    expected = conv1 + conv_rest + lstm1 + lstm2 + linear
    assert expected == 458_699
    assert sum(p.numel() for p in net.parameters()) == expected


def test_samples_in_a_batch_are_independent():
    torch.manual_seed(0)
    net = _small().eval()
    x = torch.randn(8, 30, 6)
    with torch.no_grad():
        y = net(x)
        perm = torch.randperm(8)
        torch.testing.assert_close(net(x[perm]), y[perm], atol=1e-6, rtol=0)
        # A recurrence over the batch axis would make row 3 depend on rows 0..2.
        torch.testing.assert_close(net(x[3:4]), y[3:4], atol=1e-6, rtol=0)


def test_last_time_steps_drive_only_their_own_sample():
    torch.manual_seed(0)
    net = _small().eval()
    x = torch.randn(8, 30, 6)
    x2 = x.clone()
    x2[3, -3:] += 5.0  # perturb only the final time steps of sample 3
    with torch.no_grad():
        y, y2 = net(x), net(x2)
    assert (y2[3] - y[3]).abs().max() > 1e-4
    others = torch.arange(8) != 3
    torch.testing.assert_close(y2[others], y[others], atol=1e-6, rtol=0)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = _small()
    net(torch.randn(4, 25, 6)).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_single_lstm_layer_is_allowed():
    net = _small(lstm_layers=1, num_conv_layers=2)
    assert net(torch.randn(2, 9, 6)).shape == (2, 11)


@pytest.mark.parametrize(
    "shape",
    [(30, 6), (2, 30, 6, 1), (2, 30, 5), (2, 16, 6)],
    ids=["2d", "4d", "wrong-channels", "too-short"],
)
def test_bad_input_raises_value_error_naming_x(shape):
    net = _small()
    with pytest.raises(ValueError, match=r"\bx\b"):
        net(torch.randn(*shape))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(in_channels=0), "in_channels"),
        (dict(num_classes=0), "num_classes"),
        (dict(kernel_size=0), "kernel_size"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_bad_constructor_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _small(**kwargs)


def test_constructor_is_keyword_only():
    with pytest.raises(TypeError):
        DeepConvLSTM(6, 11)  # type: ignore[misc]
