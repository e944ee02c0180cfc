"""DeepConvLSTM (Ordóñez & Roggen, Sensors 16(1):115, 2016).

Convolutions along time only (shared across sensor channels), followed by a
recurrent stack over time; the class is read from the last time step.

    x [B, T, C]
      -> [B, 1, T, C]                     one "image" row per time step
      -> num_conv_layers x Conv2d((k, 1)) + ReLU, no padding
      -> [B, F, T', C]                    T' = T - (k - 1) * num_conv_layers
      -> [B, T', F * C]                   features of all channels per step
      -> dropout -> LSTM stack -> dropout
      -> Linear on h[:, -1]               [B, num_classes]
"""

from __future__ import annotations

import torch
from torch import nn


class DeepConvLSTM(nn.Module):
    """DeepConvLSTM classifier for windows of multichannel inertial data.

    Args:
        in_channels: number of sensor channels C (e.g. 6 for acc + gyro).
        num_classes: number of output logits.
        conv_filters: feature maps per convolution layer (paper: 64).
        kernel_size: temporal kernel length (paper: 5).
        num_conv_layers: number of convolution layers (paper: 4).
        lstm_hidden: LSTM hidden size (paper: 128).
        lstm_layers: stacked LSTM layers (paper: 2).
        dropout: dropout before, between and after the LSTM layers (paper: 0.5).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        conv_filters: int = 64,
        kernel_size: int = 5,
        num_conv_layers: int = 4,
        lstm_hidden: int = 128,
        lstm_layers: int = 2,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("conv_filters", conv_filters),
            ("kernel_size", kernel_size),
            ("num_conv_layers", num_conv_layers),
            ("lstm_hidden", lstm_hidden),
            ("lstm_layers", lstm_layers),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")

        self.in_channels = in_channels
        self.num_classes = num_classes
        self.kernel_size = kernel_size
        self.num_conv_layers = num_conv_layers

        # A (k, 1) kernel over [B, 1, T, C] convolves along time only and shares
        # its weights across sensor channels, exactly as in the paper; channels
        # are only mixed later, by the LSTM.
        layers: list[nn.Module] = []
        for i in range(num_conv_layers):
            layers.append(
                nn.Conv2d(1 if i == 0 else conv_filters, conv_filters, kernel_size=(kernel_size, 1))
            )
            layers.append(nn.ReLU(inplace=True))
        self.conv = nn.Sequential(*layers)

        self.dropout_in = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            input_size=conv_filters * in_channels,
            hidden_size=lstm_hidden,
            num_layers=lstm_layers,
            batch_first=True,
            # nn.LSTM only applies dropout *between* layers and warns if it is
            # set for a single layer.
            dropout=dropout if lstm_layers > 1 else 0.0,
        )
        self.dropout_out = nn.Dropout(dropout)
        self.classifier = nn.Linear(lstm_hidden, num_classes)

    @property
    def min_length(self) -> int:
        """Smallest window length T accepted by `forward` (unpadded convs shrink T)."""
        return (self.kernel_size - 1) * self.num_conv_layers + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classify windows.

        Args:
            x: [B, T, C] with C == in_channels and T >= min_length.

        Returns:
            logits [B, num_classes].
        """
        if x.dim() != 3:
            raise ValueError(f"x must be 3-D [B, T, C], got shape {tuple(x.shape)}")
        _, t, c = x.shape
        if c != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels (last dim), got shape {tuple(x.shape)}")
        if t < self.min_length:
            raise ValueError(
                f"x must have more than {self.min_length - 1} time steps (the convolutions are unpadded), "
                f"got shape {tuple(x.shape)}"
            )

        h = self.conv(x.unsqueeze(1))  # [B, F, T', C]
        # Time must become dim 1 *before* flattening so each LSTM step sees
        # the F features of every channel at that instant. Getting this order
        # wrong (or feeding the LSTM batch-major data without batch_first)
        # makes the recurrence run across samples instead of across time.
        b, f, t_out, _ = h.shape
        h = h.permute(0, 2, 1, 3).reshape(b, t_out, f * c)  # [B, T', F*C]
        h = self.dropout_in(h)
        out, _ = self.lstm(h)  # [B, T', H]
        last = self.dropout_out(out[:, -1])  # [B, H]: state after the whole window
        return self.classifier(last)
