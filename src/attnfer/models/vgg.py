"""VGG16 variants of paper 000: flatten and GAP heads, and the CBAM model.

The conv base has torchvision's layout (``features.0`` ... ``features.28``), so torchvision and
converted VGGFace weights load with a small ``key_map`` (see :func:`attnfer.models.load_weights`).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import ConfigError
from .attention import collect_attention_maps, create_attention
from .registry import register_model

# Output channels of VGG16's 13 conv layers; "M" is a 2x2 max-pool.
VGG16_LAYERS: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip


def make_layers(
    cfg: tuple[int | str, ...], in_chans: int, batch_norm: bool = False
) -> nn.Sequential:
    """3x3 convolutions (stride 1, padding 1) with ReLU, and max-pools where ``cfg`` says ``M``."""
    layers: list[nn.Module] = []
    channels = in_chans
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(channels, int(v), kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(v)))
        layers.append(nn.ReLU(inplace=True))
        channels = int(v)
    return nn.Sequential(*layers)


def fc_head(in_features: int, hidden: int = 512, dropout: float = 0.5) -> nn.Sequential:
    """Paper 000's classifier body: dropout, FC ``hidden`` + ReLU, dropout, FC ``hidden`` + ReLU."""
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(in_features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
    )


class VGG(nn.Module):
    """``features`` -> ``attention`` -> ``pool`` (flatten or GAP) -> ``head`` -> ``classifier``.

    ``features`` is the plain conv base (an ``nn.Sequential``) so that the last k ``Conv2d``
    layers can be unfrozen in stages, as paper 000 fine-tunes.
    """

    def __init__(
        self,
        features: nn.Sequential,
        num_classes: int,
        feature_size: tuple[int, int],
        pool: str = "gap",
        attention: nn.Module | None = None,
        hidden: int = 512,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        channels = [m for m in features if isinstance(m, nn.Conv2d)][-1].out_channels
        self.features = features
        self.attention = attention if attention is not None else nn.Identity()
        if pool == "gap":
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            pooled = channels
        elif pool == "flatten":
            self.pool = nn.Flatten()
            pooled = channels * feature_size[0] * feature_size[1]
        else:
            raise ConfigError(f"VGG pool must be 'gap' or 'flatten', got {pool!r}")
        self.head = fc_head(pooled, hidden, dropout)
        self.num_features = hidden
        self.classifier = nn.Linear(hidden, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.attention(self.features(x))))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x))

    def attention_maps(self, x: Tensor) -> dict[str, Tensor]:
        """``attention.channel`` ``[B, 512]`` and ``attention.spatial`` ``[B, 1, h, w]`` (CBAM)."""
        return collect_attention_maps(self, x)


def _vgg16(
    num_classes: int,
    in_chans: int,
    input_size: tuple[int, int],
    pool: str,
    attention: nn.Module | None,
    batch_norm: bool,
) -> VGG:
    if min(input_size) < 32:
        raise ConfigError(f"VGG16 needs inputs of at least 32x32 (5 max-pools), got {input_size}")
    features = make_layers(VGG16_LAYERS, in_chans, batch_norm)
    feature_size = (input_size[0] // 32, input_size[1] // 32)
    return VGG(features, num_classes, feature_size, pool=pool, attention=attention)


@register_model(input_size=(3, 224, 224), paper="000 ablation: VGG16 + flatten + classifier")
def vgg16(
    num_classes: int = 7,
    in_chans: int = 3,
    input_size: tuple[int, int] = (224, 224),
    batch_norm: bool = False,
) -> VGG:
    """VGG16 conv base, flattened (512 x H/32 x W/32), then paper 000's FC head."""
    return _vgg16(num_classes, in_chans, input_size, "flatten", None, batch_norm)


@register_model(input_size=(3, 224, 224), paper="000 ablation: VGG16 + GAP + classifier")
def vgg16_gap(
    num_classes: int = 7,
    in_chans: int = 3,
    input_size: tuple[int, int] = (224, 224),
    batch_norm: bool = False,
) -> VGG:
    """VGG16 conv base, global average pooling, then paper 000's FC head."""
    return _vgg16(num_classes, in_chans, input_size, "gap", None, batch_norm)


@register_model(input_size=(3, 224, 224), paper="000: VGG16 + CBAM + GAP + classifier")
def vgg16_cbam(
    num_classes: int = 7,
    in_chans: int = 3,
    input_size: tuple[int, int] = (224, 224),
    batch_norm: bool = False,
    reduction: int = 8,
    spatial_kernel: int = 3,
) -> VGG:
    """Paper 000's model: VGG16 conv base -> CBAM (r=8, 3x3) -> GAP -> FC head (~66K for CBAM)."""
    cbam = create_attention("cbam", 512, reduction=reduction, spatial_kernel=spatial_kernel)
    return _vgg16(num_classes, in_chans, input_size, "gap", cbam, batch_norm)
