"""``juanji export``: a trained model as an ONNX file (needs the ``onnx`` package)."""
from __future__ import annotations

import os

from ..trained import TrainedModel


def register(sub):
    p = sub.add_parser("export", help="write a trained model as an ONNX file",
                       description="Write the model of a run or checkpoint as ONNX (checked with onnx.checker). "
                                   "The graph includes the training set's normalisation: feed it pixels in [0, 1] "
                                   "(N, C, H, W) float32, as 'juanji predict' reads them; it returns logits.")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("output", metavar="MODEL.onnx")
    p.add_argument("--opset", type=int, help="ONNX opset version (default 17; 13 or later)")
    p.set_defaults(run=cmd_export)


def cmd_export(args):
    try:
        import onnx  # noqa: F401  (an optional dependency: say how to get it)
    except ImportError:
        raise RuntimeError("juanji export needs the onnx package: pip install onnx") from None
    from ..interop.onnx import DEFAULT_OPSET, export
    if os.path.isdir(args.output):
        raise ValueError(f"{args.output} is a folder; give the ONNX file to write, e.g. model.onnx")
    trained = TrainedModel.load(args.checkpoint)
    model, input_shape, normalization = trained.model, trained.input_shape, trained.normalization
    opset = DEFAULT_OPSET if args.opset is None else args.opset
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
