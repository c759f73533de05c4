"""Paper 000's baseline: a small convolutional network with the paper's FC classifier."""

from __future__ import annotations

from torch import Tensor, nn

from .registry import register_model
from .vgg import fc_head


class SmallCNN(nn.Module):
    """Three blocks of 3x3 convolution + ReLU + 2x2 max-pool (``widths``), flattened, then
    paper 000's head (dropout, FC 512 + ReLU, twice) and the ``classifier``."""

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        input_size: tuple[int, int] = (48, 48),
        widths: tuple[int, ...] = (32, 64, 128),
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        scale = 2 ** len(widths)
        flat = channels * (input_size[0] // scale) * (input_size[1] // scale)
        self.head = nn.Sequential(nn.Flatten(), *fc_head(flat))
        self.num_features = 512
        self.classifier = nn.Linear(512, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x))


@register_model(input_size=(1, 48, 48), paper="000 ablation: small CNN + classifier")
def small_cnn(
    num_classes: int = 7, in_chans: int = 1, input_size: tuple[int, int] = (48, 48)
) -> SmallCNN:
    """Small CNN baseline (3 conv blocks, 32-64-128 filters) for ``input_size`` images."""
    return SmallCNN(num_classes, in_chans, input_size)
