"""ResNets (He et al.) with optional attention in every residual block (paper 002).

Layer names follow torchvision (``conv1``, ``bn1``, ``layer1.0.conv1``, ...) except that the
final linear layer is ``classifier`` (torchvision: ``fc``). Three stems:

- ``"imagenet"``: 7x7 stride-2 convolution and 3x3 max-pool (for 224x224 faces);
- ``"cifar"``: one 3x3 stride-1 convolution, no pooling (full resolution, 4x the compute);
- ``"cifar_s2"``: one 3x3 stride-2 convolution, no pooling (the default for 48x48 input).

``width`` sets the channels of the stem and first stage (64 in He et al.), doubled at each later
stage: ``resnet18_cbam(width=26)`` is the 1.9 M-parameter ResNet18 of the shipped ``fast`` model.

``attention`` names a module of :func:`~attnfer.models.attention.create_attention` (``"se"``,
``"cbam"``, ...), built as ``create_attention(attention, channels, **attention_kwargs)`` on the
residual branch of every block of stages ``attention_from`` to 4: ``resnet18(attention="cbam")``
is ``resnet18_cbam()``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from torch import Tensor, nn

from ..errors import ConfigError
from .attention import collect_attention_maps, create_attention
from .registry import register_model

BlockAttention = Callable[[int], nn.Module]  # channels -> the module on a residual branch
STEMS = ("imagenet", "cifar", "cifar_s2")


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions; ``attention`` (if any) reweights the residual before the sum."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        attention: BlockAttention | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.attention = attention(planes) if attention else nn.Identity()
        self.downsample = downsample if downsample is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.attention(self.bn2(self.conv2(out)))
        return self.relu(out + self.downsample(x))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 x4 convolutions; attention before the sum as in BasicBlock."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        attention: BlockAttention | None = None,
    ) -> None:
        super().__init__()
        width = planes * self.expansion
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, width)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.attention = attention(width) if attention else nn.Identity()
        self.downsample = downsample if downsample is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.attention(self.bn3(self.conv3(out)))
        return self.relu(out + self.downsample(x))


class ResNet(nn.Module):
    """Stem, four stages of ``block``, global average pooling and a linear ``classifier``.

    ``num_classes=0`` leaves ``classifier`` as ``nn.Identity`` (a feature extractor, as FAN uses);
    ``width`` is the channel count of the stem and ``layer1``, doubled by each later stage;
    ``attention`` (a :func:`create_attention` name, with ``attention_kwargs``) sits in every block
    of stages ``attention_from`` to 4.
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: tuple[int, int, int, int],
        num_classes: int = 7,
        in_chans: int = 1,
        stem: str = "cifar_s2",
        attention: str | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        width: int = 64,
        attention_from: int = 1,
    ) -> None:
        super().__init__()
        if stem not in STEMS:
            raise ConfigError(f"unknown ResNet stem {stem!r}; choose one of {', '.join(STEMS)}")
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ConfigError(f"ResNet width must be a positive integer, got {width!r}")
        if attention_from not in (1, 2, 3, 4, 5):
            raise ConfigError(f"attention_from must be 1 to 4 (5: none), got {attention_from!r}")
        if attention_kwargs and not attention:
            raise ConfigError(f"attention_kwargs {attention_kwargs!r} given without attention")
        self.inplanes = width
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.conv1 = conv3x3(in_chans, width, stride=2 if stem == "cifar_s2" else 1)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        factory = (
            partial(create_attention, attention, **(attention_kwargs or {})) if attention else None
        )
        at = [factory if stage >= attention_from else None for stage in (1, 2, 3, 4)]
        self.layer1 = self._make_layer(block, width, layers[0], 1, at[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], 2, at[1])
        self.layer3 = self._make_layer(block, 4 * width, layers[2], 2, at[2])
        self.layer4 = self._make_layer(block, 8 * width, layers[3], 2, at[3])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = 8 * width * block.expansion
        self.classifier: nn.Module = (
            nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        )

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(
        self,
        block: type[BasicBlock | Bottleneck],
        planes: int,
        blocks: int,
        stride: int,
        attention: BlockAttention | None,
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, attention)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, attention=attention) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x))

    def attention_maps(self, x: Tensor) -> dict[str, Tensor]:
        """Maps of every block's attention, e.g. ``layer1.0.attention.spatial`` ``[B, 1, h, w]``.

        Empty for the plain ResNets.
        """
        return collect_attention_maps(self, x)


def default_stem(input_size: tuple[int, int]) -> str:
    """``"imagenet"`` for inputs of 112 pixels and more, else the affordable ``"cifar_s2"``."""
    return "imagenet" if min(input_size) >= 112 else "cifar_s2"


def _resnet(
    block: type[BasicBlock | Bottleneck],
    layers: tuple[int, int, int, int],
    num_classes: int,
    in_chans: int,
    input_size: tuple[int, int],
    stem: str | None,
    attention: str | None = None,
    attention_kwargs: dict[str, Any] | None = None,
    width: int = 64,
    attention_from: int = 1,
) -> ResNet:
    """:class:`ResNet` with ``stem`` defaulting to :func:`default_stem` of ``input_size``."""
    stem = stem or default_stem(input_size)
    return ResNet(
        block, layers, num_classes, in_chans, stem, attention, attention_kwargs, width,
        attention_from,
    )  # fmt: skip


@register_model(input_size=(1, 48, 48), paper="fast training: ResNet10")
def resnet10(
    num_classes: int = 7,
    in_chans: int = 1,
    input_size: tuple[int, int] = (48, 48),
    stem: str | None = None,
    width: int = 64,
    attention: str | None = None,
    attention_kwargs: dict[str, Any] | None = None,
    attention_from: int = 1,
) -> ResNet:
    """ResNet10: one basic block a stage (ResNet18 has two), for short training budgets; ``stem``
    and ``attention`` as in :func:`resnet18`."""
    return _resnet(
        BasicBlock, (1, 1, 1, 1), num_classes, in_chans, input_size, stem, attention,
        attention_kwargs, width, attention_from,
    )  # fmt: skip


@register_model(input_size=(1, 48, 48), paper="002 baseline: ResNet18")
def resnet18(
    num_classes: int = 7,
    in_chans: int = 1,
    input_size: tuple[int, int] = (48, 48),
    stem: str | None = None,
    width: int = 64,
    attention: str | None = None,
    attention_kwargs: dict[str, Any] | None = None,
    attention_from: int = 1,
) -> ResNet:
    """ResNet18; ``stem`` defaults to :func:`default_stem` of ``input_size``; ``attention`` (a
    :func:`create_attention` name, with ``attention_kwargs``) in the residual blocks of stages
    ``attention_from`` to 4 (1: every block)."""
    return _resnet(
        BasicBlock, (2, 2, 2, 2), num_classes, in_chans, input_size, stem, attention,
        attention_kwargs, width, attention_from,
    )  # fmt: skip


@register_model(input_size=(1, 48, 48), paper="002 ablation: ResNet18 + SE")
def resnet18_se(
    num_classes: int = 7,
    in_chans: int = 1,
    input_size: tuple[int, int] = (48, 48),
    stem: str | None = None,
    width: int = 64,
    reduction: int = 16,
    attention_from: int = 1,
) -> ResNet:
    """ResNet18 with squeeze-and-excitation in the residual blocks of stages ``attention_from``
    to 4 (1: every block)."""
    se = {"reduction": reduction}
    return resnet18(num_classes, in_chans, input_size, stem, width, "se", se, attention_from)


@register_model(input_size=(1, 48, 48), paper="002: ResNet18 + CBAM (7x7)")
def resnet18_cbam(
    num_classes: int = 7,
    in_chans: int = 1,
    input_size: tuple[int, int] = (48, 48),
    stem: str | None = None,
    width: int = 64,
    reduction: int = 16,
    spatial_kernel: int = 7,
    attention_from: int = 1,
) -> ResNet:
    """Paper 002's model: ResNet18 with CBAM (7x7 spatial kernel) in every residual block, or in
    those of stages ``attention_from`` to 4 (cheaper: the early stages have the largest maps)."""
    cbam = {"reduction": reduction, "spatial_kernel": spatial_kernel}
    return resnet18(num_classes, in_chans, input_size, stem, width, "cbam", cbam, attention_from)


@register_model(input_size=(1, 48, 48), paper="ablation: ResNet34")
def resnet34(
    num_classes: int = 7,
    in_chans: int = 1,
    input_size: tuple[int, int] = (48, 48),
    stem: str | None = None,
    width: int = 64,
) -> ResNet:
    """ResNet34 (basic blocks 3-4-6-3)."""
    return _resnet(BasicBlock, (3, 4, 6, 3), num_classes, in_chans, input_size, stem, width=width)


@register_model(input_size=(3, 224, 224), paper="000 ablation: ResNet50 + classifier")
def resnet50(
    num_classes: int = 7,
    in_chans: int = 3,
    input_size: tuple[int, int] = (224, 224),
    stem: str | None = None,
    width: int = 64,
) -> ResNet:
    """ResNet50 (bottleneck blocks 3-4-6-3, 2048 features)."""
    return _resnet(Bottleneck, (3, 4, 6, 3), num_classes, in_chans, input_size, stem, width=width)
