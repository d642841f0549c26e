"""Jobs that never block prediction (issue #30): ``juanji serve`` of a small ResNet-20 as a real process
answers a prediction while an occlusion or a test-set evaluation runs (asserted by the order of the answers, not by
the clock), lets a page's newer heavy request supersede its older one of the same kind, and evaluates in the
background with its progress; in Debian's chromium, the page asks one analysis after quick strokes, never paints
an answer about an older drawing, and shows the evaluation's progress."""
import json
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from idx_data import idx_folder
from live_server import analysed_page, serving

EVALUATED = 600            # test images of the ResNet-20's --data folder: seconds of evaluation
PIXELS = json.dumps({"pixels": np.random.default_rng(1).random((28, 28)).round(4).tolist()}).encode()
LONG = "size=9&stride=1"   # an occlusion of 20×20 squares: seconds of ResNet-20 passes


@pytest.fixture(scope="module")
def resnet(resnet20_run, tmp_path_factory):
    """``juanji serve --threads 1`` of the ResNet-20 of conftest, its test set read from a folder of ``EVALUATED``
    images: a job on one core, a prediction on the other of CI's two.  (--threads 2 answers in the same order, but
    its jobs take minutes here: OpenBLAS ignores the one-thread setting that ``runtime.threads`` makes for a batch
    split started off the main thread, so BLAS oversubscribes the cores.)"""
    test_set = idx_folder(tmp_path_factory.mktemp("jobs") / "test-set", EVALUATED)
    with serving(resnet20_run, "--data", test_set, "--threads", "1") as url:
        yield url


def ask(url, path, body=None, **headers):
    """(status, JSON answer, time.monotonic() when it came) of one request; 4xx too."""
    if body is not None:
        headers["Content-Type"] = "application/json"
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    request = urllib.request.Request(url + path, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, data = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, data = error.code, error.read()
    return status, json.loads(data), time.monotonic()


def in_background(*args, **headers):
    """``ask`` in a thread, started now: join() it, then its answer is in .answer."""
    thread = threading.Thread(target=lambda: setattr(thread, "answer", ask(*args, **headers)))
    thread.start()
    return thread


def predicted(url):
    """A prediction of PIXELS: time.monotonic() when it came (the seconds it took printed)."""
    start = time.monotonic()
    status, answer, came = ask(url, "/api/runs/resnet20/predict", PIXELS)
    assert status == 200 and len(answer["classes"]) == 10
    print(f"prediction answered in {came - start:.3f} s")
    return came


def test_a_prediction_answers_while_an_occlusion_runs(resnet):
    occlusion = in_background(resnet, f"/api/runs/resnet20/occlusion?{LONG}", PIXELS)
    time.sleep(0.5)                                   # the occlusion has its worker and runs its first squares
    came = predicted(resnet)
    occlusion.join(120)
    status, answer, occluded = occlusion.answer
    assert status == 200 and np.shape(answer["map"]) == (20, 20)
    assert came < occluded


def test_the_evaluation_runs_in_the_background_and_a_prediction_answers_meanwhile(resnet):
    path = "/api/runs/resnet20/confusion?wait=no"
    status, answer, _ = ask(resnet, path)
    assert status == 202 and answer["evaluating"]["total"] in (None, EVALUATED)    # None: the set is being read
    seen = [answer["evaluating"]["done"]]
    while seen[-1] == 0:                              # until its first batch is done: it runs now
        status, answer, _ = ask(resnet, path)
        assert status == 202, answer
        seen.append(answer["evaluating"]["done"])
    predicted(resnet)
    status, answer, _ = ask(resnet, path)            # the prediction answered before the evaluation ended
    assert status == 202 and 0 < answer["evaluating"]["done"] < answer["evaluating"]["total"] == EVALUATED
    assert seen == sorted(seen)
    status, waited, _ = ask(resnet, "/api/runs/resnet20/confusion")       # a program waits for the answer
    assert status == 200 and waited["count"] == np.sum(waited["matrix"]) == EVALUATED
    status, answer, _ = ask(resnet, path)
    assert status == 200 and answer == waited
    status, answer, _ = ask(resnet, "/api/runs/resnet20/confusion?wait=maybe")
    assert status == 400 and "wait must be yes or no" in answer["error"]


def test_a_newer_request_of_the_page_supersedes_its_older_one_of_the_same_kind(resnet):
    page = {"Juanji-Page": "a1b2c3"}
    path = "/api/runs/resnet20/occlusion"
    long = in_background(resnet, f"{path}?{LONG}", PIXELS, **page, Juanji_Sequence="5")
    time.sleep(0.5)
    status, answer, stale = ask(resnet, path, PIXELS, **page, Juanji_Sequence="3")   # older than the one running
    assert status == 409 and answer["superseded"] is True and "superseded" in answer["error"]
    other = in_background(resnet, f"{path}?{LONG}", PIXELS, Juanji_Page="another-page", Juanji_Sequence="1")
    status, answer, newer = ask(resnet, path, PIXELS, **page, Juanji_Sequence="7")
    assert status == 200 and np.shape(answer["map"]) == (12, 12)
    long.join(120)
    other.join(120)
    status, answer, stopped = long.answer
    assert status == 409 and answer["superseded"] is True
    assert stale < stopped
    assert other.answer[0] == 200                     # another page's job (and a program's) is never superseded
    for headers, message in [({"Juanji_Sequence": "x"}, "Juanji-Sequence"), ({"Juanji_Page": "a b"}, "Juanji-Page")]:
        status, answer, _ = ask(resnet, path, PIXELS, **{"Juanji_Page": "p", "Juanji_Sequence": "1", **headers})
        assert status == 400 and message in answer["error"]


# -- the page ---------------------------------------------------------------------------------------------------
@pytest.fixture
def page(browser, server):
    """A fresh page on the LeNet-5 of conftest, its blank image analysed; no JavaScript error may happen on it."""
    with analysed_page(browser, server + "/") as opened:
        yield opened


def stroke(page, box, x0, y0, x1, y1, up=True):
    page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=6)
    if up:
        page.mouse.up()


@pytest.mark.slow
def test_quick_strokes_are_analysed_once_and_an_older_drawings_answer_is_never_painted(page):
    posted, held = [], []
    page.on("request", lambda r: posted.append(r) if r.method == "POST" else None)
    page.route("**/analyze?*", lambda route: held.append(route))       # answers wait until the test lets them go
    box = page.locator("#draw").bounding_box()
    for x in (0.3, 0.5, 0.7):                                           # three strokes, each < 300 ms after the last
        stroke(page, box, x, 0.2, x, 0.8)
    page.wait_for_timeout(600)
    asked = [r.url.split("/")[-1].split("?")[0] for r in posted]
    assert asked.count("analyze") == len(held) == 1 and set(asked) == {"predict", "analyze"}
    heavy = [r for r in posted if "/analyze" in r.url]
    assert heavy[0].headers["juanji-page"] and heavy[0].headers["juanji-sequence"].isdigit()

    page.evaluate("document.querySelector('#layers').firstChild.dataset.old = 'yes'")
    stroke(page, box, 0.2, 0.5, 0.8, 0.5, up=False)                     # a new drawing begins …
    with page.expect_response(lambda r: "/analyze" in r.url):
        held.pop().continue_()                                          # … and the old one's analysis comes
    page.wait_for_timeout(300)
    assert page.evaluate("document.querySelector('#layers').firstChild.dataset.old") == "yes"   # not painted
    assert not any("/occlusion" in r.url for r in posted)

    page.unroute("**/analyze?*")
    with page.expect_response(lambda r: "/occlusion" in r.url):         # the new drawing's, painted
        page.mouse.up()
    page.wait_for_function("document.querySelector('#layers').firstChild.dataset.old === undefined")

    deconv = []                                                         # a map's deconvnet, then another's
    page.route("**/deconv?*", lambda route: deconv.append(route) if not deconv else route.continue_())
    page.click('.maps canvas[data-layer="0"][data-map="0"]')
    page.click('.maps canvas[data-layer="0"][data-map="3"]')
    page.wait_for_function("document.querySelector('#detail-deconv-note').textContent.includes('strongest')")
    shown = page.evaluate("document.querySelector('#detail-deconv').toDataURL()")
    with page.expect_response(lambda r: "/deconv" in r.url and "map=0" in r.url):
        deconv[0].continue_()
    page.wait_for_timeout(300)
    assert page.evaluate("document.querySelector('#detail-deconv').toDataURL()") == shown


@pytest.mark.slow
def test_the_evaluation_shows_its_progress(page):
    page.click("#load-confusion")
    page.wait_for_function("/^evaluating… \\d+ %$/.test(document.querySelector('#load-confusion').textContent)")
    page.wait_for_selector("#confusion tr")
    assert page.locator("#confusion tr").count() == 11 and page.locator("#load-confusion").is_hidden()
