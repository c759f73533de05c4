"""Frame Attention Network (Meng et al. 2019) as paper 004 uses it for video FER."""

from __future__ import annotations

from torch import Tensor, nn

from .attention import FrameAttention, collect_attention_maps
from .registry import register_model
from .resnet import BasicBlock, ResNet, default_stem


class FrameAttentionNetwork(nn.Module):
    """Embeds each of ``K`` frames with ``backbone``, pools them with :class:`FrameAttention`
    and classifies the clip feature.

    Input ``[B, K, C, H, W]``; ``forward_features`` returns the clip feature (``D`` for
    ``attention="self"``, ``2D`` for ``"relation"``).
    """

    def __init__(self, backbone: ResNet, num_classes: int = 7, attention: str = "relation") -> None:
        super().__init__()
        self.backbone = backbone
        self.frame_attention = FrameAttention(backbone.num_features, attention)
        self.num_features = self.frame_attention.out_features
        self.classifier = nn.Linear(self.num_features, num_classes)

    def frame_features(self, x: Tensor) -> Tensor:
        """Per-frame embeddings ``[B, K, D]``."""
        return self.backbone.forward_features(x.flatten(0, 1)).unflatten(0, x.shape[:2])

    def forward_features(self, x: Tensor) -> Tensor:
        return self.frame_attention(self.frame_features(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x))

    def attention_maps(self, x: Tensor) -> dict[str, Tensor]:
        """``frame_attention.alpha``, ``.beta`` (relation) and ``.weights``, each ``[B, K]``."""
        return collect_attention_maps(self, x)


@register_model(input_size=(3, 3, 224, 224), paper="004: FAN (ResNet18 + frame attention)")
def fan_resnet18(
    num_classes: int = 7,
    in_chans: int = 3,
    input_size: tuple[int, int] = (224, 224),
    stem: str | None = None,
    attention: str = "relation",
) -> FrameAttentionNetwork:
    """FAN over a ResNet18 frame embedding; ``attention`` is ``"self"`` or ``"relation"``.

    Takes clips of any length ``K`` (paper 004 samples K = 3 segments); ``input_size`` is the
    frame size, which picks the backbone's stem as for ``resnet18``.
    """
    backbone = ResNet(BasicBlock, (2, 2, 2, 2), 0, in_chans, stem or default_stem(input_size))
    return FrameAttentionNetwork(backbone, num_classes, attention)
