"""The Starlette application: the page (static files shipped with juanji, no CDN) and the JSON API under /api/.

Every error is a JSON answer ``{"error": "..."}`` with a 4xx status (5xx, without a traceback, for bugs).
Runs are looked up by name in the set given at start: a request never names a file.
"""
from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import views
from ..trained import INVERT
from .inputs import MAX_BYTES, BadInput, read_pixels

STATIC = os.path.join(os.path.dirname(__file__), "static")


def create_app(runs) -> Starlette:
    """The app serving ``runs``, a list of ``ServedRun`` with distinct names."""
    by_name = {run.name: run for run in runs}

    def find(request: Request):
        name = request.path_params["run"]
        if name not in by_name:
            raise HTTPException(404, f"no run named '{name}'; the runs are {', '.join(by_name)}")
        return by_name[name]

    async def body_pixels(request: Request, run):
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
            raise BadInput(f"invert must be one of {', '.join(INVERT)} and center yes or no, got {invert!r}, {center!r}")
        return await run_in_threadpool(read_pixels, bytes(body), request.headers.get("content-type", ""),
                                       run.trained, invert, center == "yes")

    async def index(request):
        return FileResponse(os.path.join(STATIC, "index.html"))

    async def list_runs(request):
        return JSONResponse({"runs": [{**run.describe(), "layers": await run_in_threadpool(views.layer_list, run),
                                       "kernels": views.kernel_list(run)} for run in runs]})

    async def metrics(request):
        return JSONResponse({"epochs": await run_in_threadpool(find(request).metrics)})

    async def predict(request):
        run = find(request)
        return JSONResponse(await run_in_threadpool(views.predict, run, await body_pixels(request, run)))

    async def features(request):
        run = find(request)
        pixels = await body_pixels(request, run)
        layer, form = request.query_params.get("layer"), request.query_params.get("format", "json")
        if form == "png":
            if layer is None:
                raise HTTPException(400, "format=png draws one layer: add layer=NAME")
            return Response(await run_in_threadpool(views.feature_png, run, pixels, layer), media_type="image/png")
        if form != "json":
            raise HTTPException(400, f"format must be json or png, got '{form}'")
        return JSONResponse(await run_in_threadpool(views.features, run, pixels, layer))

    async def kernels(request):
        return JSONResponse(await run_in_threadpool(views.kernels, find(request), request.path_params["layer"]))

    async def explain(request):
        run = find(request)
        pixels = await body_pixels(request, run)
        return JSONResponse(await run_in_threadpool(views.explain, run, pixels, request.query_params.get("class"),
                                                    request.query_params.get("layer")))

    async def analyze(request):
        run = find(request)
        pixels = await body_pixels(request, run)
        return JSONResponse(await run_in_threadpool(views.analyze, run, pixels, request.query_params.get("class"),
                                                    request.query_params.get("layer")))

    async def occlusion(request):
        run = find(request)
        pixels = await body_pixels(request, run)
        query = request.query_params
        return JSONResponse(await run_in_threadpool(views.occlusion, run, pixels, query.get("class"),
                                                    query.get("size"), query.get("stride")))

    async def deconv(request):
        run = find(request)
        pixels = await body_pixels(request, run)
        return JSONResponse(await run_in_threadpool(views.deconv, run, pixels, request.query_params.get("layer"),
                                                    request.query_params.get("map")))

    async def confusion(request):
        return JSONResponse(await run_in_threadpool(views.confusion, find(request)))

    async def test_image(request):
        index = request.path_params["index"]
        if not index.isdigit():
            raise HTTPException(404, f"test images are numbered 0, 1, 2 …, not '{index}'")
        png = await run_in_threadpool(views.test_image, find(request), int(index))
        return Response(png, media_type="image/png")

    routes = [
        Route("/", index),
        Route("/api/runs", list_runs),
        Route("/api/runs/{run}/metrics", metrics),
        Route("/api/runs/{run}/predict", predict, methods=["POST"]),
        Route("/api/runs/{run}/features", features, methods=["POST"]),
        Route("/api/runs/{run}/kernels/{layer}", kernels),
        Route("/api/runs/{run}/explain", explain, methods=["POST"]),
        Route("/api/runs/{run}/analyze", analyze, methods=["POST"]),
        Route("/api/runs/{run}/occlusion", occlusion, methods=["POST"]),
        Route("/api/runs/{run}/deconv", deconv, methods=["POST"]),
        Route("/api/runs/{run}/confusion", confusion),
        Route("/api/runs/{run}/test-images/{index}", test_image),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]
    return Starlette(routes=routes, exception_handlers={
        HTTPException: lambda request, e: JSONResponse({"error": e.detail}, e.status_code),
        BadInput: lambda request, e: JSONResponse({"error": str(e)}, e.status),
        views.NotFound: lambda request, e: JSONResponse({"error": e.args[0]}, 404),
        ValueError: lambda request, e: JSONResponse({"error": str(e)}, 400),
        Exception: lambda request, e: JSONResponse({"error": f"internal error ({type(e).__name__})"}, 500),
    })
