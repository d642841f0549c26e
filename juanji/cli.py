"""The ``juanji`` command line.

Errors a user can cause (bad files, bad options, bad input, not enough memory) print one line
``juanji: error: ...`` and exit with status 2; ``--debug`` shows the Python traceback instead.  Under
``mpirun``/``srun`` the line names the failing rank and the whole job ends (``MPI_Abort``), so that no
process waits for it forever.
"""
from __future__ import annotations

import argparse
import sys

from . import __version__, distributed
from .commands import export, serve, show, train, zoo
from .functional import plan
from .runtime.allocator import keep_freed_memory
from .runtime.kernels import BACKENDS, get_kernels, set_kernels
from .runtime.threads import set_num_threads

COMMAND_MODULES = [train, zoo, show, export, serve]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="juanji", description="Convolutional networks in plain NumPy.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)   # --version: a table
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    parser.add_argument("--version", action="version", version=version())
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    for command in sub.choices.values():
        command.add_argument("--threads", type=int, metavar="N",
                             help="threads for BLAS and juanji's batch-parallel kernels (default: BLAS's own "
                                  "setting, usually one per core)")
        command.add_argument("--kernels", choices=BACKENDS,
                             help="NumPy's kernels or the compiled ones (numba: pip install 'juanji[fast]'); "
                                  "default: JUANJI_KERNELS, else numpy")
    return parser


def version() -> str:
    """The version, the kernels in use and the kernels a few typical convolutions run on them."""
    try:
        plans = "\n" + plan.describe()
    except ValueError:              # a bad JUANJI_KERNELS: kernels_in_use says why
        plans = ""
    return f"juanji {__version__} (kernels: {kernels_in_use()}){plans}"


def kernels_in_use() -> str:
    """``get_kernels()``, or why JUANJI_KERNELS cannot be used."""
    try:
        return get_kernels()
    except ValueError as error:
        return str(error)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()         # a training process reuses its freed arrays (JUANJI_KEEP_FREED_MEMORY=0: not)
    try:
        if args.threads is not None:
            set_num_threads(args.threads)
        if args.kernels is not None:
            set_kernels(args.kernels)
        get_kernels()           # a bad JUANJI_KERNELS is an error before any work starts
        return args.run(args)
    except distributed.StoppedElsewhere:
        return 2                    # the process that failed says why
    except (ValueError, TypeError, KeyError, OSError, RuntimeError, MemoryError) as error:
        if args.debug:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        if isinstance(error, MemoryError) and not message:      # NumPy's own, from an allocation that failed
            message = "out of memory; try a smaller --batch-size or --image-size, or fewer --threads"
        # always one line; under MPI it names the rank and ends every process
        return distributed.report_and_abort(" ".join(str(message).split()), 2)
    except KeyboardInterrupt as interrupted:
        if isinstance(interrupted, distributed.Signalled):      # one process of a job: the job ends, naming it
            return distributed.report_and_abort(f"{interrupted}; the checkpoints already written are kept", 130)
        if distributed.is_main_process():
            print("juanji: interrupted; the checkpoints already written are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
