"""The sub-commands of ``juanji``; each module has ``register(subparsers)`` setting ``run=`` handlers."""
import argparse
import math


def number(kind, low=None, high=None):
    """An argparse ``type``: a finite ``kind`` (int or float) in [low, high], else argparse's one-line error
    naming the option (exit status 2) before any work starts."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text!r}")
        return value
    parse.__name__ = kind.__name__        # argparse names the type in its messages
    return parse


def add_photo_options(parser):
    """``--invert`` and ``--center`` (``TrainedModel.prepare``'s ``invert`` and ``center``) for a command
    that reads images."""
    from ..trained import INVERT
    parser.add_argument("--invert", choices=INVERT, default="auto",
                        help="negative of the image, x → 1 − x: auto (default) for a light background when the "
                             "run was trained on dark ones, as Fashion-MNIST; yes; no")
    parser.add_argument("--center", action="store_true",
                        help="cut a photo to its object and centre it on a square it fills, like Fashion-MNIST")
