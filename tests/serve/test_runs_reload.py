"""``juanji serve`` following its runs on disk (issue #30 item 5), against the real server process on real run
folders: a best.npz rewritten while served is served (a bad one keeps the model, with a notice), a run before its
first checkpoint waits and is served once it appears, runs found in ./runs/ or a folder of runs, a run the page
cannot show listed with its reason beside the others, and a lone checkpoint's curves; then all of it on the page,
in Debian's chromium."""
import json
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest
from live_server import new_page, serving, serving_process

from juanji import checkpoint as ckpt
from juanji import models
from juanji.cli import main
from juanji.functional.activation import softmax
from juanji.io import write_atomically
from juanji.serve.run import LONE, WAITING, ServedRun
from juanji.trained import TrainedModel

ZEROS = json.dumps({"pixels": np.zeros((28, 28)).tolist()}).encode()


def call(url, path, body=None):
    """(status, JSON answer) of a GET, or of a POST of ``body`` as JSON; 4xx answers too."""
    request = urllib.request.Request(url + path, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def listed(url) -> dict:
    """{name: what GET /api/runs says of it}: the page's poll, after which the server has looked at the disk."""
    status, answer = call(url, "/api/runs")
    assert status == 200
    return {run["name"]: run for run in answer["runs"]}


def probabilities(answer) -> np.ndarray:
    """The probabilities of a /predict answer, class by class."""
    return np.array([c["probability"] for c in sorted(answer["classes"], key=lambda c: c["index"])])


def expected(checkpoint) -> np.ndarray:
    """The probabilities that the model in ``checkpoint`` gives the blank image, computed here."""
    trained = TrainedModel.load(checkpoint)
    x = trained.normalize(np.zeros((1, 28, 28), dtype=np.float32))
    return softmax(trained.model(x[None]).astype(np.float64))[0]


def trained_further(good, run, epoch, scale):
    """best.npz of ``run`` as `juanji train` writes it after ``epoch``, atomically: the weights of ``good`` (a
    checkpoint) with the classifier's scaled by ``scale``, its history one epoch longer; metrics.jsonl too."""
    state = ckpt.load(good)
    model = ckpt.restore_model(state)
    model[-1].params["weight"][...] *= scale
    history = [*state.meta["history"], {**state.meta["history"][-1], "epoch": epoch}]
    meta = {k: v for k, v in state.meta.items() if k not in ("format", "version", "model", "optimizer")}
    ckpt.save(run / "best.npz", model, **{**meta, "epoch": epoch, "history": history, "metrics": history[-1]})
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in history))


def waiting_run(tiny_run, folder):
    """A run folder as `juanji train` leaves it before its first epoch ends: config.json, no checkpoint."""
    folder.mkdir()
    shutil.copy(tiny_run / "config.json", folder)
    return folder


def test_a_rewritten_best_npz_is_served_and_a_bad_one_keeps_the_model(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "lenet5")
    kept = shutil.copy(run / "best.npz", tmp_path / "epoch-1.npz")
    with serving(run) as url:
        before = listed(url)["lenet5"]
        assert (before["state"], before["epoch"], before["best"], before["notice"]) == ("ready", 1, True, None)
        np.testing.assert_allclose(probabilities(call(url, "/api/runs/lenet5/predict", ZEROS)[1]), expected(kept),
                                   atol=1e-6)

        trained_further(kept, run, 2, 3.0)                 # the next epoch's best.npz, as training writes it
        now = listed(url)["lenet5"]
        assert (now["epoch"], now["loads"], now["notice"]) == (2, before["loads"] + 1, None)
        second = expected(run / "best.npz")
        assert not np.allclose(second, expected(kept), atol=1e-3)
        np.testing.assert_allclose(probabilities(call(url, "/api/runs/lenet5/predict", ZEROS)[1]), second, atol=1e-6)
        assert [m["epoch"] for m in call(url, "/api/runs/lenet5/metrics")[1]["epochs"]] == [1, 2]

        good = shutil.copy(run / "best.npz", tmp_path / "epoch-2.npz")
        write_atomically(run / "best.npz", lambda f: f.write(b"not a checkpoint"))      # a bad file in its place
        now = listed(url)["lenet5"]
        assert now["state"] == "ready" and now["epoch"] == 2 and now["loads"] == before["loads"] + 1
        assert "cannot be served" in now["notice"] and "still serving the model loaded before, from epoch 2" in \
            now["notice"] and "not a juanji checkpoint" in now["notice"]
        np.testing.assert_allclose(probabilities(call(url, "/api/runs/lenet5/predict", ZEROS)[1]), second, atol=1e-6)

        shutil.copy(good, run / "best.npz")
        with open(run / "best.npz", "r+b") as f:           # half written, in place
            f.truncate(f.seek(0, 2) // 2)
        now = listed(url)["lenet5"]
        assert now["epoch"] == 2 and "truncated or corrupt" in now["notice"]
        np.testing.assert_allclose(probabilities(call(url, "/api/runs/lenet5/predict", ZEROS)[1]), second, atol=1e-6)

        trained_further(good, run, 3, 0.5)                 # a good one again: served, the notice gone
        now = listed(url)["lenet5"]
        assert (now["epoch"], now["notice"]) == (3, None)
        np.testing.assert_allclose(probabilities(call(url, "/api/runs/lenet5/predict", ZEROS)[1]),
                                   expected(run / "best.npz"), atol=1e-6)


def test_a_run_before_its_first_checkpoint_waits_and_is_served_once_it_appears(tiny_run, tmp_path):
    run = waiting_run(tiny_run, tmp_path / "fresh")
    with serving_process(run) as (url, process):
        assert process.stdout.readline() == f"  fresh: {WAITING}\n"
        assert listed(url)["fresh"]["state"] == "waiting" and listed(url)["fresh"]["reason"] == WAITING
        status, answer = call(url, "/api/runs/fresh/predict", ZEROS)
        assert status == 409 and answer["error"] == f"fresh: {WAITING}"
        assert call(url, "/api/runs/fresh/metrics") == (200, {"epochs": [], "note": None})

        for name in ("best.npz", "metrics.jsonl"):          # the first epoch ends
            shutil.copy(tiny_run / name, run)
        now = listed(url)["fresh"]
        assert (now["state"], now["epoch"], now["reason"]) == ("ready", 1, None)
        assert call(url, "/api/runs/fresh/predict", ZEROS)[0] == 200
        assert len(call(url, "/api/runs/fresh/metrics")[1]["epochs"]) == 1

        (run / "best.npz").unlink()                          # deleted, while the training's config.json stays
        assert listed(url)["fresh"]["state"] == "waiting"
        shutil.copy(tiny_run / "best.npz", run)              # back: a new load, whatever was served before
        assert (listed(url)["fresh"]["state"], listed(url)["fresh"]["loads"]) == ("ready", now["loads"] + 1)


def test_without_arguments_every_run_in_runs_is_served_and_a_folder_of_runs_too(tiny_run, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    for name in ("b", "a"):
        shutil.copytree(tiny_run, root / name)
    waiting_run(tiny_run, root / "c")
    (root / "notes").mkdir()                                  # neither a run nor a file of one: not listed
    (root / "README.txt").write_text("my runs")
    monkeypatch.chdir(tmp_path)
    with serving() as url:
        assert {name: run["state"] for name, run in listed(url).items()} == {"a": "ready", "b": "ready",
                                                                             "c": "waiting"}
    with serving(root, tiny_run) as url:
        assert list(listed(url)) == ["a", "b", "c", "lenet5"]


def test_no_runs_or_a_missing_one_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--port", "0"]) == 2
    assert capsys.readouterr().err == ("juanji: error: no runs in ./runs/ (where juanji train puts them); name a run "
                                       "directory, a folder of runs or a checkpoint file: juanji serve RUN\n")
    assert main(["serve", "gone", "--port", "0"]) == 2
    assert capsys.readouterr().err == "juanji: error: gone: no such run directory or checkpoint file\n"


def test_a_text_run_among_image_runs_is_listed_with_its_reason_and_skipped(tiny_run, text_run, tmp_path, capsys):
    with serving_process(tiny_run, text_run) as (url, process):
        assert process.stdout.readline() == f"  words: not shown: {text_run}: a text run; the page shows image " \
                                            f"models only\n"
        runs = listed(url)
        assert runs["lenet5"]["state"] == "ready"
        assert runs["words"]["state"] == "skipped" and runs["words"]["reason"].endswith(
            "a text run; the page shows image models only")
        assert call(url, "/api/runs/lenet5/predict", ZEROS)[0] == 200
        assert call(url, "/api/runs/words/predict", ZEROS)[0] == 409
        assert call(url, "/api/runs/words/metrics")[0] == 409

    assert main(["serve", str(text_run), str(tmp_path), "--port", "0"]) == 2       # nothing that can be shown
    assert capsys.readouterr().err == (
        f"juanji: error: none of the runs can be shown: words: {text_run}: a text run; the page shows image models "
        f"only; {tmp_path.name}: {tmp_path}: a folder without best.npz, not a juanji run\n")


def test_a_segmentation_run_is_skipped_with_its_reason(tmp_path):
    ckpt.save(tmp_path / "unet.npz", models.create("unet", in_channels=1, input_size=28, num_classes=3), epoch=1,
              data={"input_shape": [1, 28, 28], "classes": ["background", "shirt", "boot"]})
    served = ServedRun("unet", str(tmp_path / "unet.npz"))
    assert served.served.state == "skipped" and "a segmentation run" in served.served.reason


def test_a_lone_checkpoint_says_it_has_no_curves_and_one_in_a_run_has_the_runs(tiny_run, tmp_path):
    shutil.copy(tiny_run / "best.npz", tmp_path / "lone.npz")
    epoch_file = tiny_run / "checkpoints" / "epoch-001.npz"
    with serving(tmp_path / "lone.npz", epoch_file) as url:
        runs = listed(url)
        assert (runs["lone"]["best"], runs["lone"]["checkpoint"]) == (False, "lone.npz")
        assert call(url, "/api/runs/lone/metrics") == (200, {"epochs": [], "note": LONE})
        status, answer = call(url, "/api/runs/epoch-001/metrics")
        assert status == 200 and answer["note"] is None and [m["epoch"] for m in answer["epochs"]] == [1]


# -- on the page -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_page_follows_the_runs_on_disk(browser, tiny_run, text_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "lenet5")
    kept = shutil.copy(run / "best.npz", tmp_path / "epoch-1.npz")
    fresh = waiting_run(tiny_run, tmp_path / "fresh")
    (tmp_path / "alone").mkdir()
    lone = shutil.copy(tiny_run / "best.npz", tmp_path / "alone" / "lone.npz")
    with serving(run, fresh, lone, text_run) as url:
        page = new_page(browser)
        page.goto(url + "/")
        page.wait_for_selector("#topk li")
        assert "model from epoch 1, best so far" in page.inner_text("#run-info")
        assert not page.is_visible("#run-notice")
        options = page.eval_on_selector_all("#run option", "os => os.map((o) => [o.textContent, o.disabled])")
        assert options == [["lenet5", False], [f"fresh: {WAITING}", True], ["lone", False],
                           [f"words: {text_run}: a text run; the page shows image models only", True]]
        page.wait_for_selector(".curves[data-run='lone'] .note")
        assert page.inner_text(".curves[data-run='lone'] .note") == LONE
        assert page.locator(".curves[data-run='words']").count() == 0
        blank = page.inner_text("#topk")

        trained_further(kept, run, 2, 3.0)
        page.wait_for_function("document.querySelector('#run-info').textContent.includes('model from epoch 2, best')")
        page.wait_for_function("t => document.querySelector('#topk').innerText !== t", arg=blank)   # analysed anew

        write_atomically(run / "best.npz", lambda f: f.write(b"not a checkpoint"))
        page.wait_for_selector("#run-notice:not([hidden])")
        assert "cannot be served" in page.inner_text("#run-notice")
        assert "model from epoch 2, best so far" in page.inner_text("#run-info")

        for name in ("best.npz", "metrics.jsonl"):
            shutil.copy(tiny_run / name, fresh)
        page.wait_for_function("!document.querySelector('#run option[value=fresh]').disabled")
        page.select_option("#run", "fresh")
        page.wait_for_function("document.querySelector('#run-info').textContent.includes('model from epoch 1, best')")
        assert not page.is_visible("#run-notice")
        page.select_option("#run", "lone")
        page.wait_for_function("document.querySelector('#run-info').textContent.includes('epoch 1 (lone.npz)')")
        page.context.close()
    assert page.errors == []
