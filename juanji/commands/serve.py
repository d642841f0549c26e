"""``juanji serve [RUN …]``: a local web page showing trained runs (needs the ``[serve]`` extra)."""
from __future__ import annotations

import os
import re
import socket

from ..runs import ROOT, Run


def register(sub):
    """Add ``serve`` to the ``juanji`` argument parser."""
    p = sub.add_parser("serve", help="a live page in the browser: draw, predict, look inside, curves",
                       description="Serve a page (and a JSON API under /api/) that shows trained runs: "
                                   "predictions as you draw, feature maps, kernels, saliency, Grad-CAM, "
                                   "training curves (live), confusion matrix.")
    p.add_argument("runs", nargs="*", metavar="RUN",
                   help=f"run directories, folders of runs, or checkpoint files (default: every run in {ROOT}/); a "
                        f"run still training is followed: its new best.npz is served once it is written")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="(default 8000; 0: any free port, printed at start)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a name or address other machines use to reach the page (repeatable): requests addressed "
                        "to names other than 127.0.0.1, localhost, ::1 and --host are refused")
    p.add_argument("--data", help="folder of IDX files or class image folders to read the test set from (default: "
                                  "the one trained on, when it is not a folder named only by the checkpoint)")
    p.set_defaults(run=cmd_serve)


HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*|\[?[0-9A-Fa-f:.]+\]?")     # a DNS name, IPv4 or IPv6


def holds_run(folder) -> bool:
    """True when ``folder`` is a run directory: a training began there (config.json), or it holds a best.npz."""
    run = Run(folder)
    return run.exists() or os.path.isfile(run.best)


def runs_in(folder) -> list[str]:
    """The run directories directly inside ``folder``, by name."""
    return [path for name in sorted(os.listdir(folder)) if holds_run(path := os.path.join(folder, name))]


def run_paths(arguments) -> list[str]:
    """The runs to serve: each argument a run directory or checkpoint file, or a folder of runs (every run in
    it); no argument: every run in ``ROOT``, where ``juanji train`` puts them."""
    if not arguments:
        found = runs_in(ROOT) if os.path.isdir(ROOT) else []
        if not found:
            raise FileNotFoundError(f"no runs in ./{ROOT}/ (where juanji train puts them); name a run directory, a "
                                    f"folder of runs or a checkpoint file: juanji serve RUN")
        return found
    paths = []
    for argument in arguments:
        if not os.path.exists(argument):
            raise FileNotFoundError(f"{argument}: no such run directory or checkpoint file")
        inside = runs_in(argument) if os.path.isdir(argument) and not holds_run(argument) else []
        paths += inside or [argument]
    return paths


def run_names(paths) -> list[str]:
    """A short, distinct name per run for the URLs: the folder's name, with -2, -3 … where two are alike."""
    names = []
    for path in paths:
        base = os.path.basename(os.path.normpath(path)) or "run"
        base = os.path.splitext(base)[0] if os.path.isfile(path) else base
        name, index = base, 1
        while name in names:
            index += 1
            name = f"{base}-{index}"
        names.append(name)
    return names


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) before the runs load: a taken port fails at once, in one line."""
    if not 0 <= port < 65536:
        raise ValueError(f"--port must be between 0 and 65535, got {port}")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)            # connections wait in the backlog until the server runs
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    return sock


def cmd_serve(args):
    try:
        import uvicorn
        from ..serve.app import allowed_hosts, create_app
    except ImportError as error:
        raise RuntimeError(f"juanji serve needs the [serve] extra: pip install 'juanji[serve]' ({error})") from None
    from ..serve.run import ServedRun
    if args.data is not None and not os.path.isdir(args.data):
        raise ValueError(f"--data {args.data}: no such folder")
    for name in args.allow_host:
        if not HOST_NAME.fullmatch(name):
            raise ValueError(f"--allow-host {name!r}: expected a host name or an IP address")
    sock = listening_socket(args.host, args.port)
    try:
        paths = run_paths(args.runs)
        runs = [ServedRun(name, path, args.data) for name, path in zip(run_names(paths), paths)]
        shown = [r for r in runs if r.served.state != "skipped"]
        if not shown:           # nothing to serve: the reason in one line (several: each run's)
            raise ValueError(runs[0].served.reason if len(runs) == 1 else "none of the runs can be shown: " +
                             "; ".join(f"{r.name}: {r.served.reason}" for r in runs))
    except BaseException:
        sock.close()
        raise
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving {', '.join(r.name for r in shown)} on http://{host}:{sock.getsockname()[1]}/  "
          f"(Ctrl-C stops)", flush=True)
    for run in runs:
        if run.served.state != "ready":
            print(f"  {run.name}: {'not shown: ' if run.served.state == 'skipped' else ''}{run.served.reason}",
                  flush=True)
    hosts = allowed_hosts(args.host, args.allow_host)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: --host {args.host} lets other machines open the page and send it images, addressed to "
              f"{', '.join(hosts)} (--allow-host NAME adds the name they use)", flush=True)
    uvicorn.Server(uvicorn.Config(create_app(runs, hosts), log_level="warning")).run(sockets=[sock])
    return 0
