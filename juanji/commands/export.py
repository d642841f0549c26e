"""``juanji export``: a trained model as an ONNX file (needs the ``onnx`` package), and with ``--web`` as a static
page any web host serves, answered in the browser by onnxruntime-web (``juanji.interop.web``)."""
from __future__ import annotations

import os

from ..trained import TrainedModel


def register(sub):
    p = sub.add_parser("export", help="write a trained model as an ONNX file, or as a static web page",
                       description="Write the model of a run or checkpoint as ONNX (checked with onnx.checker). "
                                   "The graph includes the training set's normalisation: feed it pixels in [0, 1] "
                                   "(N, C, H, W) float32, as 'juanji predict' reads them; it returns logits. "
                                   "With --web DIR, write the page of 'juanji serve' for the run into the new "
                                   "folder DIR instead (or as well, when MODEL.onnx is given): static files that "
                                   "predict and show feature maps in the browser, without a server.")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("output", metavar="MODEL.onnx", nargs="?", help="the ONNX file (optional with --web)")
    p.add_argument("--opset", type=int, help="ONNX opset version (default 17; 13 or later)")
    p.add_argument("--web", metavar="DIR",
                   help="a new (or empty) folder for the page; downloads onnxruntime-web once into "
                        "$XDG_CACHE_HOME/juanji/ (~/.cache/juanji/)")
    p.add_argument("--data", help="with --web: the folder of IDX files or class image folders to read the test "
                                  "set from, for the confusion matrix (default: the one trained on)")
    p.set_defaults(run=cmd_export)


def cmd_export(args):
    try:
        import onnx  # noqa: F401  (an optional dependency: say how to get it)
    except ImportError:
        raise RuntimeError("juanji export needs the onnx package: pip install onnx") from None
    from ..interop.onnx import DEFAULT_OPSET, export
    if args.output is None and args.web is None:
        raise ValueError("give the ONNX file to write (MODEL.onnx), or --web DIR for a static page")
    if args.data is not None and args.web is None:
        raise ValueError("--data is read for --web's confusion matrix only; add --web DIR")
    if args.output is not None and os.path.isdir(args.output):
        raise ValueError(f"{args.output} is a folder; give the ONNX file to write, e.g. model.onnx")
    opset = DEFAULT_OPSET if args.opset is None else args.opset
    if args.web is not None:
        write_page(args, opset)
    if args.output is None:
        return 0
    trained = TrainedModel.load(args.checkpoint)
    model, input_shape, normalization = trained.model, trained.input_shape, trained.normalization
    proto = export(model, args.output, input_shape=input_shape, opset=opset, normalization=normalization)
    kind = proto.graph.input[0].type.tensor_type
    dims = "×".join(str(d.dim_value or d.dim_param) for d in kind.shape.dim)
    out_dims = "×".join(str(d.dim_value or d.dim_param) for d in proto.graph.output[0].type.tensor_type.shape.dim)
    print(f"wrote {args.output}: {getattr(model, 'name', type(model).__name__)}, opset {opset}, "
          f"{len(proto.graph.node)} nodes; input '{proto.graph.input[0].name}' {dims} "
          f"{'int64 token ids' if kind.elem_type == onnx.TensorProto.INT64 else 'float32'}"
          f"{' (pixels in [0, 1], normalised inside the graph)' if normalization else ''} → output "
          f"'{proto.graph.output[0].name}' {out_dims} logits")
    return 0


def write_page(args, opset) -> None:
    from ..interop.web import write_web
    content = write_web(args.checkpoint, args.web, data=args.data, opset=opset)
    run = content["runs"][0]
    listing, confusion = run["listing"], run["unavailable"].get("confusion")
    print(f"wrote {args.web}: the page of {listing['name']} ({listing['model']}, {len(run['onnx']['maps']) - 1} "
          f"layers with maps, onnxruntime-web {content['onnxruntime_web']}); serve the folder with any web server, "
          f"e.g. python -m http.server -d {args.web}")
    if confusion:
        print(f"no confusion matrix on the page: {confusion}")
    if run["unavailable"].get("saliency"):
        print(f"no saliency, Grad-CAM or deconvnet on the page: {run['unavailable']['saliency']}")
