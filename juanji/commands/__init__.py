"""The sub-commands of ``juanji``; each module has ``register(subparsers)`` setting ``run=`` handlers."""


def add_photo_options(parser):
    """``--invert`` and ``--center`` (``TrainedModel.prepare``'s ``invert`` and ``center``) for a command
    that reads images."""
    from ..trained import INVERT
    parser.add_argument("--invert", choices=INVERT, default="auto",
                        help="negative of the image, x → 1 − x: auto (default) for a light background when the "
                             "run was trained on dark ones, as Fashion-MNIST; yes; no")
    parser.add_argument("--center", action="store_true",
                        help="cut a photo to its object and centre it on a square it fills, like Fashion-MNIST")
