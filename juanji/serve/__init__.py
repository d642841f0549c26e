"""``juanji serve``: a local web page (and the JSON API under /api/ that it uses) showing trained runs —
predictions as you draw, feature maps, kernels, saliency and Grad-CAM, curves, confusion matrix.
Needs the ``[serve]`` extra (Starlette and uvicorn)."""
