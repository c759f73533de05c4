"""Model zoo: attention modules, the papers' models in a registry, weight loading and export.

``create_model(name)`` builds a model; every image model has ``forward(x) -> logits``,
``forward_features(x) -> [B, num_features]``, ``num_features`` and ``classifier`` (the final
``nn.Linear``: ``forward(x) == classifier(forward_features(x))``), and the models with attention
have ``attention_maps(x) -> dict[str, Tensor]``. ``create_attention(name, channels)`` builds a
block attention module registered with ``register_attention`` (``list_attention()``), and
``create_model("resnet18", attention=name)`` puts it in every residual block.
"""

from . import deep_emotion, fan, resnet, sepconv_se, small_cnn, vgg  # noqa: F401  (registration)
from .attention import (
    CBAM,
    AttentionModule,
    ChannelAttention,
    FrameAttention,
    SpatialAttention,
    SpatialTransformer,
    SqueezeExcite,
    collect_attention_maps,
    create_attention,
    list_attention,
    register_attention,
)
from .registry import ModelInfo, create_model, list_models, model_info, register_model
from .weights import LoadedWeights, load_weights, read_weights, save_weights

__all__ = [
    "CBAM",
    "AttentionModule",
    "ChannelAttention",
    "FrameAttention",
    "LoadedWeights",
    "ModelInfo",
    "SpatialAttention",
    "SpatialTransformer",
    "SqueezeExcite",
    "collect_attention_maps",
    "create_attention",
    "create_model",
    "list_attention",
    "list_models",
    "load_weights",
    "model_info",
    "read_weights",
    "register_attention",
    "register_model",
    "save_weights",
]
