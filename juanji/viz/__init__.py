"""Pictures of what a network does: arrays first (these functions, NumPy only), then PNG files drawn with
matplotlib (headless) by ``juanji.viz.plots`` and ``juanji.viz.curves``."""
from juanji.viz.class_model import class_model
from juanji.viz.chain import layer_chain
from juanji.viz.deconvnet import deconvnet
from juanji.viz.features import feature_maps, map_grid
from juanji.viz.gradcam import cell_centres, grad_cam, upsample
from juanji.viz.grid import picture, tile, to_unit
from juanji.viz.kernels import conv_layers, kernel_grid
from juanji.viz.occlusion import occlusion_map, pixel_map
from juanji.viz.saliency import class_score_gradient, saliency_map

__all__ = ["cell_centres", "class_model", "class_score_gradient", "conv_layers", "deconvnet", "feature_maps",
           "grad_cam", "kernel_grid", "layer_chain", "map_grid", "occlusion_map", "picture", "pixel_map",
           "saliency_map", "tile", "to_unit", "upsample"]
