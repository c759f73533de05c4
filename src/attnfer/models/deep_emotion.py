"""Deep-Emotion (paper 001): a spatial transformer in front of a four-convolution network."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .attention import SpatialTransformer
from .registry import register_model


class DeepEmotion(nn.Module):
    """Deep-Emotion, following the paper's layer description (fewer than 10 layers).

    ``stn`` (paper 001's localisation net, see :class:`SpatialTransformer`) warps the input;
    ``features`` has four 3x3 convolutions of ``width`` filters, each pair followed by 2x2
    max-pooling and ReLU (a ReLU also follows the first convolution of each pair); then dropout,
    a ``hidden``-unit FC layer with ReLU and the ``classifier``. Weights start from
    N(0, ``init_std``) with zero biases, as the paper trains from scratch; the transformer's
    regressor starts at the identity.
    """

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        input_size: tuple[int, int] = (48, 48),
        width: int = 10,
        hidden: int = 50,
        dropout: float = 0.5,
        init_std: float = 0.05,
    ) -> None:
        super().__init__()
        self.stn = SpatialTransformer(in_chans, input_size)
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, width, 3),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, in_chans, *input_size)).shape[1]
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(flat, hidden), nn.ReLU(inplace=True))
        self.num_features = hidden
        self.classifier = nn.Linear(hidden, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.normal_(m.weight, 0.0, init_std)
                nn.init.zeros_(m.bias)
        self.stn.reset_identity()

    def forward_features(self, x: Tensor) -> Tensor:
        return self.fc(self.features(self.stn(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x))

    def attention_maps(self, x: Tensor) -> dict[str, Tensor]:
        """``stn.theta`` (``[B, 2, 3]``) and ``stn.warped``, the input the network sees."""
        warped, theta = self.stn(x, return_map=True)
        return {"stn.theta": theta, "stn.warped": warped}


@register_model(input_size=(1, 48, 48), paper="001: Deep-Emotion (STN + 4 conv)")
def deep_emotion(
    num_classes: int = 7,
    in_chans: int = 1,
    input_size: tuple[int, int] = (48, 48),
    dropout: float = 0.5,
) -> DeepEmotion:
    """Deep-Emotion for ``input_size`` images (the flatten sizes depend on it)."""
    return DeepEmotion(num_classes, in_chans, input_size, dropout=dropout)
