"""``juanji models``: the model zoo."""
from .. import models


def register(sub):
    p = sub.add_parser("models", help="list the model zoo")
    p.set_defaults(run=cmd_models)


def cmd_models(args):
    for name in models.names():
        print(f"{name:<16} {models.describe(name)}")
    return 0
