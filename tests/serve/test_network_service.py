"""``juanji serve`` treated as a network service: the names and origins it answers, what a checkpoint may make it
read, bounded reads of the run's files, a bounded pool for the heavy work apart from the light routes, the
documented 4xx for malformed bodies, and a run replaced under it.  Headers and files against the app on
uvicorn in a thread of the test; concurrency against the real server process; memory bounded by RLIMIT_AS."""
import contextlib
import http.client
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import uvicorn
from live_server import serving_process
from PIL import Image

from juanji import checkpoint as ckpt
from juanji.data.datasets import DEFAULT_DATA_DIR
from juanji.data.idx import write_idx
from juanji.io import read_small_file
from juanji.schema import TrainConfig
from juanji.serve.app import allowed_hosts, create_app
from juanji.serve.run import ServedRun
from juanji.train import Trainer, absolute_data
from juanji.trained import TrainedModel

DATA = os.environ.get("JUANJI_DATA") or DEFAULT_DATA_DIR
PIXELS = json.dumps({"pixels": np.zeros((28, 28)).tolist()}).encode()


class Client:
    """Requests to a server on 127.0.0.1 with the headers a test chooses (Host among them)."""

    def __init__(self, port: int):
        self.port = port

    def __call__(self, method, path, body=None, headers=None):
        """(status, JSON answer or bytes, headers) of one request."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body, headers or {})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        kind = response.getheader("Content-Type", "")
        return response.status, json.loads(data) if kind == "application/json" else data, response.headers

    def get(self, path, **headers):
        return self("GET", path, headers=headers)

    def post(self, path, body=PIXELS, content_type="application/json", **headers):
        return self("POST", path, body, {"Content-Type": content_type, **headers})


@contextlib.contextmanager
def client(*runs):
    """The app of ``runs`` on uvicorn in a thread of this process, listening on a free port of 127.0.0.1."""
    listening = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(list(runs), allowed_hosts("127.0.0.1")), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            time.sleep(0.01)
        yield Client(listening.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(20)
        listening.close()


def with_header(source, target, **changes):
    """A copy of checkpoint ``source`` at ``target`` with header fields changed, the weights as they were."""
    state = ckpt.load(source)
    meta = {k: v for k, v in state.meta.items() if k not in ("format", "version", "model", "optimizer")}
    ckpt.save(target, ckpt.restore_model(state), **{**meta, **changes})


def write_metrics(run_dir, history):
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in history))


@pytest.fixture(scope="module")
def served(tiny_run):
    return ServedRun("lenet5", str(tiny_run))


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A copy of the tiny run that a test may change."""
    return shutil.copytree(tiny_run, tmp_path / "run")


# -- 1. names and origins ---------------------------------------------------------------------------------
@pytest.mark.parametrize("host, status", [("evil.example", 400), ("127.0.0.1.nip.io:8000", 400), ("127.0.0.1", 200),
                                          ("127.0.0.1:8000", 200), ("localhost:8000", 200), ("[::1]:8000", 200)])
def test_only_this_machines_names_are_answered(served, host, status):
    """DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 sends Host: evil.example."""
    with client(served) as http:
        assert http.get("/api/runs", Host=host)[0] == status
        assert http.get("/", Host=host)[0] == status
        assert http.post("/api/runs/lenet5/predict", Host=host)[0] == status


def test_the_names_answered_follow_host_and_allow_host():
    assert allowed_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "[::1]"]
    assert allowed_hosts("0.0.0.0", ["Box.lan", "192.168.1.5"]) == \
        ["127.0.0.1", "localhost", "[::1]", "box.lan", "192.168.1.5"]
    assert allowed_hosts("fe80::1")[-1] == "[fe80::1]"


@pytest.mark.parametrize("headers, status", [
    ({"Origin": "http://evil.example"}, 403), ({"Origin": "null"}, 403),
    ({"Origin": "http://127.0.0.1:9"}, 403), ({"Sec-Fetch-Site": "cross-site"}, 403),
    ({"Sec-Fetch-Site": "same-site"}, 403),
    ({"Origin": "http://127.0.0.1:PORT", "Sec-Fetch-Site": "same-origin"}, 200), ({}, 200)])
def test_work_is_taken_from_the_page_itself_or_a_program_only(served, headers, status):
    with client(served) as http:
        headers = {key: value.replace("PORT", str(http.port)) for key, value in headers.items()}
        found, answer, _ = http.post("/api/runs/lenet5/predict", **headers)
    assert found == status
    if status == 403:
        assert "another site's page" in answer["error"]


# -- 2. the data a run is evaluated on --------------------------------------------------------------------
def tiny_idx(folder, count=20):
    """An MNIST-format folder of ``count`` training and test images of classes 0…9."""
    folder.mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 256, (count, 28, 28), dtype=np.uint8)
    for split in ("train", "t10k"):
        write_idx(folder / f"{split}-images-idx3-ubyte", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte", (np.arange(count) % 10).astype(np.uint8))
    return folder


def test_a_data_folder_named_only_by_the_checkpoint_is_never_read(tiny_run, run_copy):
    config = ckpt.read_meta(tiny_run / "best.npz")["config"]
    with_header(tiny_run / "best.npz", run_copy / "best.npz", config={**config, "data": os.path.abspath(DATA)})
    with client(ServedRun("run", str(run_copy))) as http:
        status, answer, _ = http.get("/api/runs/run/confusion")
        assert status == 409 and "--data" in answer["error"]
        assert http.get("/api/runs/run/test-images/0")[0] == 409
    with client(ServedRun("run", str(run_copy), data=DATA)) as http:      # named on the command line: read
        status, answer, _ = http.get("/api/runs/run/confusion")
        assert status == 200 and answer["count"] == 10000


def test_an_old_relative_data_path_is_read_inside_the_run_with_a_warning(tiny_run, run_copy):
    tiny_idx(run_copy / "digits")
    config = ckpt.read_meta(tiny_run / "best.npz")["config"]
    with_header(tiny_run / "best.npz", run_copy / "best.npz", config={**config, "data": "digits"})
    served = ServedRun("run", str(run_copy))
    with pytest.warns(UserWarning, match="stored relative"), client(served) as http:
        assert served.current().data_source() == os.path.join(run_copy, "digits")
        assert http.get("/api/runs/run/confusion")[1]["count"] == 20


def test_training_stores_the_data_folder_by_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(DATA, tmp_path)
    assert absolute_data(relative) == os.path.abspath(DATA) and absolute_data("words") == "words"
    assert absolute_data(None) is None
    trainer = Trainer(TrainConfig(data=relative, limit=64, epochs=1, out=str(tmp_path / "run")), progress=False)
    assert trainer.config.data == os.path.abspath(DATA)


def test_a_deleted_data_folder_is_a_409_not_a_500(tiny_run, tmp_path):
    data = tiny_idx(tmp_path / "digits")
    served = ServedRun("run", str(tiny_run), data=str(data))
    shutil.rmtree(data)
    with client(served) as http:
        for path in ("/api/runs/run/confusion", "/api/runs/run/test-images/0"):
            status, answer, _ = http.get(path)
            assert status == 409 and "cannot be read" in answer["error"]


@pytest.mark.parametrize("option, value, message", [
    ("--data", "gone", "--data {value}: no such folder"),
    ("--allow-host", "*", "--allow-host '*': expected a host name or an IP address")])
def test_serve_checks_its_data_folder_and_host_names(tiny_run, tmp_path, option, value, message):
    value = str(tmp_path / value) if option == "--data" else value
    found = subprocess.run([sys.executable, "-m", "juanji.cli", "serve", str(tiny_run), option, value, "--port", "0"],
                           capture_output=True, text=True, timeout=60)
    assert (found.returncode, found.stderr) == (2, f"juanji: error: {message.format(value=value)}\n")


# -- 3. bounded reads of the run's files ------------------------------------------------------------------
def make_bad(path, kind):
    """In place of ``path``: a file over any limit (1 GiB, sparse, one line), a link to /dev/zero, a FIFO, a folder."""
    if kind == "huge":
        with open(path, "wb") as f:
            f.truncate(2 ** 30)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", path)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        os.mkdir(path)


KINDS = {"huge": "larger than", "dev-zero": "a device", "fifo": "a FIFO", "folder": "a folder"}
# Reads what a test names, in each run given, under an address-space limit of 1 GiB above what is in use: the
# unbounded reads this replaces took 2 GB and more, and a FIFO blocked them for good (the timeout catches that).
BOUNDED = """
import resource, sys
from juanji.cli import main
from juanji.limits import _address_space_in_use
from juanji.runs import Run
resource.setrlimit(resource.RLIMIT_AS, (_address_space_in_use() + 2 ** 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
what, *runs = sys.argv[1:]
for run in runs:
    if what == "curves":
        print("exit", main(["show", "curves", run]))
        continue
    try:
        getattr(Run(run), what) if what == "config" else Run(run).metrics()
    except OSError as error:
        print("refused:", error)
"""


@pytest.mark.parametrize("what", ["metrics", "config", "curves"])
def test_run_files_are_read_bounded_and_only_if_regular(tiny_run, tmp_path, what):
    name = "config.json" if what == "config" else "metrics.jsonl"
    runs = [shutil.copytree(tiny_run, tmp_path / kind) for kind in KINDS]
    for run, kind in zip(runs, KINDS):
        os.remove(run / name)
        make_bad(run / name, kind)
    started = time.monotonic()
    found = subprocess.run([sys.executable, "-c", BOUNDED, what, *map(str, runs)], capture_output=True, text=True,
                           timeout=60)
    assert time.monotonic() - started < 30
    said = (found.stderr if what == "curves" else found.stdout).splitlines()
    assert len(said) == len(KINDS), found.stdout + found.stderr
    for line, run, kind in zip(said, runs, KINDS):
        assert f"cannot read {run / name}: it is" in line and KINDS[kind] in line, line
    if what == "curves":
        assert found.stdout == "exit 2\n" * len(KINDS) and all(line.startswith("juanji: error:") for line in said)


@pytest.mark.parametrize("kind", KINDS)
def test_the_metrics_route_answers_409_for_a_bad_metrics_file(run_copy, kind):
    served = ServedRun("run", str(run_copy))
    os.remove(run_copy / "metrics.jsonl")
    make_bad(run_copy / "metrics.jsonl", kind)
    with client(served) as http:
        status, answer, _ = http.get("/api/runs/run/metrics")
        assert status == 409 and KINDS[kind] in answer["error"]
        assert http.get("/api/runs")[0] == 200


def test_read_small_file_stops_at_its_limit(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_small_file(path, 100) == b"x" * 100
    with pytest.raises(OSError, match="larger than"):
        read_small_file(path, 99)
    with pytest.raises(FileNotFoundError, match=f"cannot read {tmp_path / 'missing'}"):
        read_small_file(tmp_path / "missing", 10)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_checkpoint_that_is_no_regular_file_is_refused(tmp_path, kind):
    make_bad(tmp_path / "x.npz", kind)
    with pytest.raises(OSError, match=rf"x\.npz: it is {KINDS[kind]}.*, not a checkpoint file"):
        TrainedModel.load(tmp_path / "x.npz")


# -- 4. a bounded pool for heavy work, apart from the light routes ----------------------------------------
def get(url, body=None, content_type="image/png"):
    """(status, headers, body bytes) of one request; 4xx and 5xx too."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def peak_memory(process) -> int:
    with open(f"/proc/{process.pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


@pytest.mark.slow
def test_a_flood_of_large_uploads_is_decoded_a_few_at_a_time_and_the_rest_told_to_retry(tiny_run):
    buffer = io.BytesIO()
    Image.new("RGB", (4096, 4096)).save(buffer, format="PNG")       # 48 KB that decode to 50 MB
    with serving_process(tiny_run) as (url, process):
        with ThreadPoolExecutor(100) as pool:
            answers = list(pool.map(lambda _: get(f"{url}/api/runs/lenet5/predict", buffer.getvalue()), range(100)))
        peak = peak_memory(process)
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 2 and statuses.count(503) >= 50, statuses
    busy = next(answer for answer in answers if answer[0] == 503)
    assert busy[1]["Retry-After"] == "1" and json.loads(busy[2])["error"].startswith("busy")
    assert peak < 1.5 * 2 ** 30, f"the server peaked at {peak / 2 ** 30:.1f} GiB"


def test_light_routes_do_not_wait_behind_heavy_ones(tiny_run):
    """The evaluation of the 10,000 test images (hundreds of milliseconds on a quiet machine) against four light
    routes asked the moment it has started (milliseconds each once warm): each light route answers before it.
    Each is asked once beforehand, so that what is compared is waiting, not a route's first-use cost (the test
    set read from disk, imports); the order of events is asserted, never a duration."""
    light = [("runs", "/api/runs"), ("metrics", "/api/runs/lenet5/metrics"),
             ("kernels", "/api/runs/lenet5/kernels/0"), ("image", "/api/runs/lenet5/test-images/0")]
    with serving_process(tiny_run) as (url, _):
        assert all(get(url + path)[0] == 200 for _, path in light)
        finished = {}

        def timed(name, path):
            status, _, _ = get(url + path)
            finished[name] = (time.monotonic(), status)

        status, _, body = get(url + "/api/runs/lenet5/confusion?wait=no")        # started, answered at once
        assert status == 202 and "evaluating" in json.loads(body), body
        heavy = threading.Thread(target=timed, args=("confusion", "/api/runs/lenet5/confusion"))
        heavy.start()
        for name, path in light:
            timed(name, path)
        heavy.join(120)
    assert all(status == 200 for _, status in finished.values()), finished
    assert max(finished[name][0] for name, _ in light) < finished["confusion"][0]


# -- 5. malformed bodies get their documented 4xx ---------------------------------------------------------
def png_header(width, height):
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def bmp_header(width, height):
    return (b"BM" + struct.pack("<IHHI", 70, 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0) + b"\0" * 16)


@pytest.mark.parametrize("body, content_type, status", [
    ('{"pixels": ' + "[" * 100_000 + "]" * 100_000 + "}", "application/json", 400),
    ('{"pixels": [[' + "9" * 400 + "]]}", "application/json", 400),
    (png_header(50_000, 50_000), "image/png", 413),
    (png_header(65_535, 65_535), "image/png", 413),
    (bmp_header(4, -2 ** 31), "image/bmp", 413),
], ids=["deep-json", "400-digit-integer", "png-50000", "png-65535", "bmp-height-int-min"])
def test_malformed_bodies_get_their_documented_4xx(served, body, content_type, status):
    with client(served) as http:
        found, answer, _ = http.post("/api/runs/lenet5/predict", body, content_type)
    assert found == status and answer["error"]


# -- 6. a run replaced or deleted under the server ---------------------------------------------------------
def test_a_run_replaced_or_deleted_while_served_is_followed_not_mixed(run_copy, tmp_path):
    served = ServedRun("run", str(run_copy))
    history = ckpt.read_meta(run_copy / "best.npz")["history"]

    def answers(http):
        http.get("/api/runs")                   # the page's poll: the server looks at the run on disk
        return http.get("/api/runs/run/metrics"), http.post("/api/runs/run/predict")

    with client(served) as http:
        # the same run trained one epoch further, as `juanji train` does while the page watches: served
        further = history + [{**history[0], "epoch": 2}]
        with_header(run_copy / "best.npz", run_copy / "best.npz", epoch=2, history=further)
        write_metrics(run_copy, further)
        metrics, predict = answers(http)
        assert metrics[0] == predict[0] == 200 and len(metrics[1]["epochs"]) == 2
        assert served.current().trained.epoch == 2

        # another run in its place: its model with its curves, nothing of the old one
        os.rename(run_copy, tmp_path / "old")
        shutil.copytree(tmp_path / "old", run_copy)
        other = [{**history[0], "train_seconds": history[0]["train_seconds"] + 1}]
        with_header(run_copy / "best.npz", run_copy / "best.npz", history=other)
        write_metrics(run_copy, other)
        metrics, predict = answers(http)
        assert metrics[0] == predict[0] == 200 and metrics[1]["epochs"] == other
        assert served.current().trained.history == other

        shutil.rmtree(run_copy)
        for status, answer, _ in answers(http):
            assert status == 409 and "was deleted" in answer["error"]


def test_curves_of_another_run_beside_the_model_are_refused(run_copy):
    served = ServedRun("run", str(run_copy))
    history = ckpt.read_meta(run_copy / "best.npz")["history"]
    write_metrics(run_copy, [{**history[0], "test_loss": history[0]["test_loss"] + 1}])
    with client(served) as http:
        status, answer, _ = http.get("/api/runs/run/metrics")
    assert status == 409 and "another run's" in answer["error"]
