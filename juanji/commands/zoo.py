"""``juanji models`` (the model zoo) and ``juanji summary MODEL`` (its layer table)."""
from .. import models
from ..model_memory import check_model_memory
from ..models.summary import format_summary, summarize


def register(sub):
    p = sub.add_parser("models", help="list the model zoo")
    p.set_defaults(run=cmd_models)
    p = sub.add_parser("summary", help="layer table of a model: output shapes, parameters, MACs",
                       description="Print each layer's output shape, parameter count and multiply-"
                                   "accumulates (MACs; 1 MAC = 2 FLOPs) for one input sample.")
    p.add_argument("model", help="model name; see 'juanji models'")
    p.add_argument("--input", metavar="CxHxW",
                   help="input shape, e.g. 1x28x28 or 3x224x224 (default: the model's own)")
    p.add_argument("--num-classes", type=int, help="classes of the output layer (default: the model's)")
    p.set_defaults(run=cmd_summary)


def cmd_models(args):
    for name in models.names():
        print(f"{name:<16} {models.describe(name)}")
    return 0


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) <= 0:
        raise ValueError(f"--input must look like 1x28x28 (channels x height x width), got '{text}'")
    return shape


def cmd_summary(args):
    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    if args.input:
        shape = parse_shape(args.input)
        kwargs.update(in_channels=shape[0], input_size=shape[1])
    side = max(parse_shape(args.input)[1:]) if args.input else None
    check_model_memory(args.model, source="juanji summary", **{**kwargs, **({"input_size": side} if side else {})})
    model = models.create(args.model, **kwargs)
    shape = parse_shape(args.input) if args.input else model.input_shape
    print(f"{model.name}: {type(model).__name__} ({', '.join(f'{k}={v}' for k, v in kwargs.items()) or 'defaults'})")
    print(format_summary(summarize(model, shape), shape))
    return 0
