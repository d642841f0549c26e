"""The Starlette application: the page (static files shipped with juanji, no CDN) and the JSON API under /api/.

Every error is a JSON answer ``{"error": "..."}`` with a 4xx status (5xx, without a traceback, for bugs).
Runs are looked up by name in the set given at start: a request never names a file.  Each request takes the
model its run serves then (``run.ServedRun.current``, which follows the checkpoint on disk) and uses it throughout.

It is a network service, and treated as one:
- it answers only requests addressed to this machine's loopback names or to the names it was told
  (Starlette's ``TrustedHostMiddleware``: a page on evil.example whose name resolves to 127.0.0.1, DNS
  rebinding, gets a 400), and work (POST) only from its own page or from programs, not from other sites' pages;
- decoding uploads and running the model take at most a few threads of their own (``Lane``), with a
  bounded queue, and a 503 with Retry-After beyond it; the light routes (the run list, metrics, kernels, Linear
  layers' weights, test images) run on Starlette's thread pool and never wait behind them.

Predictions never wait behind the heavy jobs (occlusion, analyses, deconvnet, the test-set evaluation): they have
a lane of their own, every job runs a copy of the model no other thread runs (``jobs.Models``), a page's newer
request supersedes its older one of the same route (409 ``"superseded": true``, ``jobs.Jobs``), and the
evaluation runs in the background, its progress answered at once (``GET …/confusion?wait=no``).
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import os

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import jobs, views
from ..trained import INVERT
from .inputs import MAX_BYTES, BadInput, read_pixels
from .run import Unavailable

STATIC = os.path.join(os.path.dirname(__file__), "static")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")   # as a Host header names them (IPv6 in brackets)
HEAVY_WORKERS = 2           # uploads decoded and model passes run at once: each may take a core and ~100 MB
HEAVY_WAITING = 8           # more may wait for a worker (the page asks a few at a time); beyond: 503
LIVE_WORKERS = 2            # predictions run at once, on threads apart from the heavy jobs (HEAVY_WAITING wait)
EVALUATION_WORKERS = 1      # test-set evaluations run at once, in the background
RETRY_AFTER_SECONDS = 1     # a LeNet-5 analysis takes ~0.05 s, a 4096² decode ~0.5 s
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class Lane:
    """The work a request may cost much CPU and memory for — decoding an upload, a forward or backward pass —
    on ``workers`` threads of its own (an anyio ``CapacityLimiter``, apart from the thread pool the light routes
    use); ``HEAVY_WAITING`` more requests may queue, the next is answered 503 with Retry-After before its body is
    read.  The app has two: the predictions, and the heavy jobs they must never wait behind."""

    def __init__(self, workers: int):
        self.limiter = anyio.CapacityLimiter(workers)
        self.capacity, self.admitted = workers + HEAVY_WAITING, 0

    def admit(self, endpoint):
        """``endpoint`` run while no more than ``capacity`` such requests are in (counted on the event loop)."""
        @functools.wraps(endpoint)
        async def admitted(request):
            if self.admitted >= self.capacity:
                return JSONResponse({"error": f"busy: {self.capacity} image jobs are running or waiting; "
                                              f"try again shortly"}, 503,
                                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            self.admitted += 1
            try:
                return await endpoint(request)
            finally:
                self.admitted -= 1
        return admitted

    async def run(self, function, *args):
        """``function(*args)`` on one of the workers."""
        return await anyio.to_thread.run_sync(functools.partial(function, *args), limiter=self.limiter)


class SameOriginWork:
    """Refuse (403) work asked by another site's page: a request other than GET, HEAD, OPTIONS whose ``Origin``
    is not this server's own, or which a browser marks ``Sec-Fetch-Site`` other than same-origin.  Programs
    send neither header and pass; so does the page itself."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = Headers(scope=scope)
            origin, site = headers.get("origin"), headers.get("sec-fetch-site")
            own = f"{scope['scheme']}://{headers.get('host', '')}".lower()
            if (origin is not None and origin.lower() != own) or site not in (None, "same-origin", "none"):
                refusal = JSONResponse({"error": f"requests from another site's page are refused (Origin "
                                                 f"{origin or 'not sent'}, Sec-Fetch-Site {site or 'not sent'}); "
                                                 f"use the page at {own}/ or a program"}, 403)
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def allowed_hosts(host: str, also=()) -> list[str]:
    """The Host names the server answers to: the loopback names, ``host`` it listens on (unless a wildcard such
    as 0.0.0.0, which names no one), and the names in ``also``; IPv6 addresses in brackets, as in a URL."""
    names = [*LOCAL_HOSTS, *([] if host in ("", "0.0.0.0", "::") else [host]), *also]
    return list(dict.fromkeys(f"[{n}]" if ":" in n and not n.startswith("[") else n.lower() for n in names))


def create_app(runs, hosts=LOCAL_HOSTS) -> Starlette:
    """The app serving ``runs``, a list of ``ServedRun`` with distinct names, to requests addressed to one of
    ``hosts`` (see ``allowed_hosts``)."""
    by_name = {run.name: run for run in runs}
    live, heavy, running = Lane(LIVE_WORKERS), Lane(HEAVY_WORKERS), jobs.Jobs(EVALUATION_WORKERS)

    def named(request: Request):
        name = request.path_params["run"]
        if name not in by_name:
            raise HTTPException(404, f"no run named '{name}'; the runs are {', '.join(by_name)}")
        return by_name[name]

    async def find(request: Request):
        """The model the run named serves now (409 when it has none)."""
        return await run_in_threadpool(named(request).current)

    def listing() -> list[dict]:
        """Every run as it is on disk now: the page polls this to follow reloads."""
        for run in runs:
            run.refresh(force=True)
        return [run.describe() for run in runs]

    async def on_image(request: Request, lane: Lane, view, *args):
        """``view(run, pixels, *args, job=JOB)`` of the image the request sends, decoded and answered in ONE job on
        ``lane`` (two would queue the answer of a decoded image behind the decoding of later ones).  On the heavy
        lane a request of a page supersedes the page's running one of the same route (``jobs.Jobs.begin``), whose
        job stops at its next check."""
        run = await find(request)
        route, page = request.url.path.rsplit("/", 1)[1], jobs.page_of(request.headers) if lane is heavy else None
        job = running.begin(route, page)
        try:
            declared = request.headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > MAX_BYTES):
                raise BadInput(f"request body over {MAX_BYTES // 2 ** 20} MiB", 413)
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise BadInput(f"request body over {MAX_BYTES // 2 ** 20} MiB", 413)
            query = request.query_params
            invert, center = query.get("invert", "auto"), query.get("center", "no")
            if invert not in INVERT or center not in ("yes", "no"):
                raise BadInput(f"invert must be one of {', '.join(INVERT)} and center yes or no, got {invert!r}, "
                               f"{center!r}")
            kind = request.headers.get("content-type", "")

            def work():
                job.check()                 # superseded while it waited for a thread: not even decoded
                return view(run, read_pixels(bytes(body), kind, run.trained, invert, center == "yes"), *args, job=job)
            return await lane.run(work)
        finally:
            running.end(route, page, job)

    async def index(request):
        return FileResponse(os.path.join(STATIC, "index.html"))

    async def list_runs(request):
        return JSONResponse({"runs": await run_in_threadpool(listing)})

    async def metrics(request):
        return JSONResponse(await run_in_threadpool(named(request).metrics))

    @live.admit
    async def predict(request):
        return JSONResponse(await on_image(request, live, views.predict))

    @heavy.admit
    async def features(request):
        layer, form = request.query_params.get("layer"), request.query_params.get("format", "json")
        if form == "png":
            if layer is None:
                raise HTTPException(400, "format=png draws one layer: add layer=NAME")
            return Response(await on_image(request, heavy, views.feature_png, layer), media_type="image/png")
        if form != "json":
            raise HTTPException(400, f"format must be json or png, got '{form}'")
        return JSONResponse(await on_image(request, heavy, views.features, layer))

    async def kernels(request):
        return JSONResponse(await run_in_threadpool(views.kernels, await find(request), request.path_params["layer"]))

    async def linear(request):
        return JSONResponse(await run_in_threadpool(views.linear, await find(request), request.path_params["layer"]))

    @heavy.admit
    async def explain(request):
        query = request.query_params
        return JSONResponse(await on_image(request, heavy, views.explain, query.get("class"), query.get("layer")))

    @heavy.admit
    async def analyze(request):
        query = request.query_params
        return JSONResponse(await on_image(request, heavy, views.analyze, query.get("class"), query.get("layer")))

    @heavy.admit
    async def occlusion(request):
        query = request.query_params
        return JSONResponse(await on_image(request, heavy, views.occlusion, query.get("class"), query.get("size"),
                                           query.get("stride")))

    @heavy.admit
    async def deconv(request):
        query = request.query_params
        return JSONResponse(await on_image(request, heavy, views.deconv, query.get("layer"), query.get("map")))

    async def confusion(request):
        """The evaluation's answer, waited for; with ``wait=no`` at once: a 202 with its progress while it runs."""
        wait = request.query_params.get("wait", "yes")
        if wait not in ("yes", "no"):
            raise HTTPException(400, f"wait must be yes or no, got '{wait}'")
        run = await find(request)
        job, answer = running.evaluation(run, functools.partial(views.confusion, run))
        if wait == "no" and not answer.done():
            return JSONResponse({"evaluating": {"done": job.done, "total": job.total}}, 202)
        return JSONResponse(await asyncio.shield(asyncio.wrap_future(answer)))   # a waiter leaving stops nothing

    async def test_image(request):
        index = request.path_params["index"]
        if not index.isdigit():
            raise HTTPException(404, f"test images are numbered 0, 1, 2 …, not '{index}'")
        png = await run_in_threadpool(views.test_image, await find(request), int(index))
        return Response(png, media_type="image/png")

    routes = [
        Route("/", index),
        Route("/api/runs", list_runs),
        Route("/api/runs/{run}/metrics", metrics),
        Route("/api/runs/{run}/predict", predict, methods=["POST"]),
        Route("/api/runs/{run}/features", features, methods=["POST"]),
        Route("/api/runs/{run}/kernels/{layer}", kernels),
        Route("/api/runs/{run}/linear/{layer}", linear),
        Route("/api/runs/{run}/explain", explain, methods=["POST"]),
        Route("/api/runs/{run}/analyze", analyze, methods=["POST"]),
        Route("/api/runs/{run}/occlusion", occlusion, methods=["POST"]),
        Route("/api/runs/{run}/deconv", deconv, methods=["POST"]),
        Route("/api/runs/{run}/confusion", confusion),
        Route("/api/runs/{run}/test-images/{index}", test_image),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)), Middleware(SameOriginWork)]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        running.stop()              # an evaluation nobody waits for must not keep the process alive

    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers={
        HTTPException: lambda request, e: JSONResponse({"error": e.detail}, e.status_code),
        BadInput: lambda request, e: JSONResponse({"error": str(e)}, e.status),
        views.NotFound: lambda request, e: JSONResponse({"error": e.args[0]}, 404),
        Unavailable: lambda request, e: JSONResponse({"error": e.args[0]}, 409),
        jobs.Superseded: lambda request, e: JSONResponse({"error": e.args[0], "superseded": True}, 409),
        ValueError: lambda request, e: JSONResponse({"error": str(e)}, 400),
        Exception: lambda request, e: JSONResponse({"error": f"internal error ({type(e).__name__})"}, 500),
    })
