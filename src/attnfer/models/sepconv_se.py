"""Paper 003's network: depthwise-separable convolutions, SE attention and residual shortcuts.

The paper's figures give the ingredients, not every width; this follows them in the manner of
mini-Xception: a plain convolutional stem, then residual modules of two separable convolutions
(batch norm, ReLU) followed by squeeze-and-excitation and a strided max-pool, with a strided 1x1
convolution on the shortcut; global average pooling and dropout before the classifier.
"""

from __future__ import annotations

from torch import Tensor, nn

from .attention import SqueezeExcite, collect_attention_maps
from .registry import register_model


class SeparableConv2d(nn.Sequential):
    """Depthwise ``k x k`` convolution followed by a pointwise 1x1 convolution."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels,
                in_channels,
                kernel_size,
                padding=kernel_size // 2,
                groups=in_channels,
                bias=False,
            ),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        )


class SepConvSEBlock(nn.Module):
    """``relu(SE(sep-conv, BN, ReLU, sep-conv, BN) then max-pool /2 + BN(conv1x1 /2 (x)))``."""

    def __init__(self, in_channels: int, out_channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            SeparableConv2d(in_channels, out_channels),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            SeparableConv2d(out_channels, out_channels),
            nn.BatchNorm2d(out_channels),
        )
        self.attention = SqueezeExcite(out_channels, reduction)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.pool(self.attention(self.residual(x)))
        return self.relu(out + self.shortcut(x))


class SepConvSE(nn.Module):
    """Stem (two 3x3 conv + BN + ReLU; the first strided for inputs of 96 pixels and more),
    ``SepConvSEBlock`` stages of ``widths`` channels, GAP and dropout, then the ``classifier``."""

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        input_size: tuple[int, int] = (48, 48),
        stem_width: int = 32,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        reduction: int = 16,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        stride = 2 if min(input_size) >= 96 else 1
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, stem_width, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(stem_width),
            nn.ReLU(inplace=True),
            nn.Conv2d(stem_width, stem_width, 3, padding=1, bias=False),
            nn.BatchNorm2d(stem_width),
            nn.ReLU(inplace=True),
        )
        blocks = []
        channels = stem_width
        for width in widths:
            blocks.append(SepConvSEBlock(channels, width, reduction))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))
        self.num_features = channels
        self.classifier = nn.Linear(channels, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """Pooled features after dropout, so that ``forward == classifier(forward_features)``."""
        return self.pool(self.blocks(self.stem(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x))

    def attention_maps(self, x: Tensor) -> dict[str, Tensor]:
        """SE channel weights of every block: ``blocks.<i>.attention`` ``[B, C]``."""
        return collect_attention_maps(self, x)


@register_model(input_size=(1, 48, 48), paper="003: separable conv + SE + residual")
def sepconv_se(
    num_classes: int = 7,
    in_chans: int = 1,
    input_size: tuple[int, int] = (48, 48),
    dropout: float = 0.5,
) -> SepConvSE:
    """Paper 003's network; ``input_size`` sets the stem stride."""
    return SepConvSE(num_classes, in_chans, input_size, dropout=dropout)
