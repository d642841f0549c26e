"""The sub-commands of ``juanji``; each module has ``register(subparsers)`` setting ``run=`` handlers."""
