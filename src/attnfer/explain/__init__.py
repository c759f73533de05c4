"""Explainability: occlusion saliency, attention maps, Grad-CAM and per-emotion region maps.

High level (numpy results, any trained model)::

    from attnfer.explain import explain_crops, render_explanation
    for i, e in enumerate(explain_crops("default", crops, "occlusion", window=8, stride=2)):
        render_explanation(e, "out", f"face{i}")  # PNG overlays and .npy maps

Low level (normalised input tensors and a model): :func:`occlusion`, :func:`grad_cam`,
:func:`attention_maps`, :func:`stn_warp`; :func:`region_maps` averages occlusion maps per emotion
over a data set and :func:`save_region_grid` draws them. PNG output needs matplotlib.
"""

from .api import METHODS, Explanation, as_pretrained, explain_crops, explain_faces, to_image
from .attention import AttentionMaps, StnWarp, attention_maps, stn_warp
from .gradcam import GradCam, grad_cam, last_conv_layer
from .occlusion import FILLS, OcclusionMaps, fill_value, occlusion, window_masks
from .region_maps import (
    RegionMaps,
    region_maps,
    sample_per_class,
    save_region_arrays,
    save_region_grid,
)
from .render import Panel, explanation_figures, render_explanation, save_array, save_panels

__all__ = [
    "FILLS",
    "METHODS",
    "AttentionMaps",
    "Explanation",
    "GradCam",
    "OcclusionMaps",
    "Panel",
    "RegionMaps",
    "StnWarp",
    "as_pretrained",
    "attention_maps",
    "explain_crops",
    "explain_faces",
    "explanation_figures",
    "fill_value",
    "grad_cam",
    "last_conv_layer",
    "occlusion",
    "region_maps",
    "render_explanation",
    "sample_per_class",
    "save_array",
    "save_panels",
    "save_region_arrays",
    "save_region_grid",
    "stn_warp",
    "to_image",
    "window_masks",
]
