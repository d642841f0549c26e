"""The JSON API of ``juanji serve`` through a plain HTTP client against the real server process: answers checked
on content against juanji computed here, and every bad request answered with a 4xx JSON error."""
import http.client
import io
import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from live_server import serving
from PIL import Image

from juanji.data.images import load_image
from juanji.functional.activation import softmax
from juanji.nn import no_grad
from juanji.serve.run import ServedModel
from juanji.viz.deconvnet import deconvnet
from juanji.viz import pictures
from juanji.viz.features import feature_maps
from juanji.viz.gradcam import grad_cam, upsample
from juanji.viz.occlusion import occlusion_map, pixel_map

BOOT = "docs/images/ankle-boot.png"


def call(url, path, body=None, content_type="application/octet-stream", method=None):
    """(status, content type, body: parsed JSON or bytes) of one request; never raises on 4xx/5xx."""
    request = urllib.request.Request(url + path, data=body, method=method,
                                     headers={"Content-Type": content_type} if body is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, kind, data = response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        status, kind, data = error.code, error.headers["Content-Type"], error.read()
    return status, kind, json.loads(data) if kind == "application/json" else data


def pixels_json(pixels):
    return json.dumps({"pixels": np.asarray(pixels).tolist()}).encode()


@pytest.fixture(scope="module")
def served(tiny_run):
    """The run as the server holds it, opened here too, to compute the expected answers."""
    return ServedModel("lenet5", str(tiny_run))


@pytest.fixture(scope="module")
def boot(server):
    """The ankle boot as the server prepared it (pixels (1, 28, 28) in [0, 1]) and its predict answer."""
    with open(BOOT, "rb") as f:
        status, _, answer = call(server, "/api/runs/lenet5/predict", f.read(), "image/png")
    assert status == 200
    return np.array(answer["pixels"]), answer


def test_runs_lists_the_run_its_layers_and_convolutions(server):
    status, _, answer = call(server, "/api/runs")
    assert status == 200
    (run,) = answer["runs"]
    assert run["name"] == "lenet5" and run["model"] == "lenet5" and run["input_shape"] == [1, 28, 28]
    assert run["classes"][9] == "Ankle boot" and run["parameters"] == 61706 and run["epoch"] == 1
    assert [(l["name"], l["type"], l["shape"]) for l in run["layers"][:3]] == [
        ("0", "Conv2d", [6, 28, 28]), ("1", "ReLU", [6, 28, 28]), ("2", "MaxPool2d", [6, 14, 14])]
    assert run["layers"][0]["window"] == {"kernel": [5, 5], "stride": [1, 1], "dilation": [1, 1], "padding": [2, 2]}
    assert run["layers"][2]["window"]["stride"] == [2, 2] and run["layers"][1]["window"] is None
    assert run["kernels"] == [{"name": "0", "shape": [6, 1, 5, 5], "reads": "input"},
                              {"name": "3", "shape": [16, 6, 5, 5], "reads": "2"}]


def test_predict_gives_the_models_probabilities_for_a_file_and_for_pixels(server, served, boot):
    pixels, answer = boot
    assert pixels.shape == (1, 28, 28) and pixels.min() >= 0 and pixels.max() <= 1
    with no_grad():
        expected = softmax(served.model(served.normalize(pixels.astype(np.float32))[None]).astype(np.float64))[0]
    probabilities = {c["index"]: c["probability"] for c in answer["classes"]}
    np.testing.assert_allclose([probabilities[i] for i in range(10)], expected, rtol=1e-5, atol=1e-7)
    assert [c["probability"] for c in answer["classes"]] == sorted(probabilities.values(), reverse=True)
    assert answer["classes"][0]["name"] == served.classes[int(expected.argmax())]
    np.testing.assert_allclose(answer["input"], (pixels - served.normalization[0][0]) / served.normalization[1][0],
                               atol=2e-6)
    status, _, again = call(server, "/api/runs/lenet5/predict", pixels_json(pixels[0]), "application/json")
    assert status == 200
    assert [c["index"] for c in again["classes"]] == [c["index"] for c in answer["classes"]]
    np.testing.assert_allclose([c["probability"] for c in again["classes"]],
                               [c["probability"] for c in answer["classes"]], rtol=1e-4, atol=1e-6)


def test_an_uploaded_photo_is_prepared_as_juanji_predict_prepares_a_file(server, served, tmp_path):
    rng = np.random.default_rng(10)
    photo = tmp_path / "photo.jpg"                     # a wide RGB JPEG: gray, scaled, centre cut
    Image.fromarray(rng.integers(0, 256, (60, 100, 3), dtype=np.uint8)).save(photo, quality=90)
    status, _, answer = call(server, "/api/runs/lenet5/predict", photo.read_bytes(), "image/jpeg")
    assert status == 200
    np.testing.assert_allclose(answer["pixels"], served.trained.prepare(photo)[0], atol=1e-6)
    status, _, answer = call(server, "/api/runs/lenet5/predict?invert=no", photo.read_bytes(), "image/jpeg")
    np.testing.assert_allclose(answer["pixels"], load_image(photo, channels=1, size=(28, 28), crop=True), atol=1e-6)


def test_a_dark_garment_on_white_is_inverted_as_predict_does_unless_told_not_to(server, served, tmp_path):
    garment = (load_image(BOOT, channels=1, size=(28, 28))[0] * 255).round().astype(np.uint8)
    photo = tmp_path / "on-white.png"
    table = Image.new("L", (120, 120), 255)
    table.paste(Image.fromarray(255 - garment).resize((84, 84)), (18, 18))
    table.save(photo)
    plain = load_image(photo, channels=1, size=(28, 28), crop=True)
    for query, expected in (("", 1 - plain), ("?invert=no", plain), ("?invert=yes", 1 - plain)):
        status, _, answer = call(server, f"/api/runs/lenet5/predict{query}", photo.read_bytes(), "image/png")
        assert status == 200
        np.testing.assert_allclose(answer["pixels"], expected, atol=1e-6)
    status, _, answer = call(server, "/api/runs/lenet5/predict?center=yes", photo.read_bytes(), "image/png")
    assert status == 200
    np.testing.assert_allclose(answer["pixels"], served.trained.prepare(photo, center=True)[0], atol=1e-6)
    status, _, answer = call(server, "/api/runs/lenet5/predict?invert=maybe", photo.read_bytes(), "image/png")
    assert status == 400 and "invert must be one of auto, yes, no" in answer["error"]


def test_one_analysis_request_gives_the_numbers_of_juanji_show_for_an_uploaded_file(server, served):
    """The page's one request per image: prediction, maps, saliency and Grad-CAM, each equal (to the JSON's
    6 decimals) to what ``juanji show`` computes from the same file (``viz.pictures``, ``TrainedModel.prepare``)."""
    trained = served.trained
    with open(BOOT, "rb") as f:
        status, _, answer = call(server, "/api/runs/lenet5/analyze?class=sandal", f.read(), "image/png")
    assert status == 200
    pixels, x = trained.prepare(BOOT)
    np.testing.assert_allclose(answer["pixels"], pixels, atol=1e-6)
    np.testing.assert_allclose(answer["input"], x, atol=1e-6)
    scores = pictures.scores_of(trained.model, x)
    probabilities = {c["index"]: c["probability"] for c in answer["classes"]}
    np.testing.assert_allclose([probabilities[i] for i in range(10)], softmax(scores.astype(np.float64)), atol=1e-7)
    with no_grad():
        maps = feature_maps(trained.model, x)                   # juanji show features
    assert [l["name"] for l in answer["layers"]] == list(maps)
    for layer in answer["layers"]:
        np.testing.assert_allclose(layer["maps"], maps[layer["name"]], atol=1e-6)
    explanation = answer["explanation"]
    assert explanation["class"] == 5 and explanation["name"] == "Sandal"
    np.testing.assert_allclose(explanation["saliency"], pictures.saliency(trained.model, x, 5), atol=1e-6)
    cam = pictures.gradcam(trained.model, x, 5)                 # juanji show gradcam
    assert explanation["gradcam_layer"] == cam.layer and explanation["gradcam_centred"] == cam.centred
    np.testing.assert_allclose(explanation["gradcam"], cam.cam, atol=1e-6)
    np.testing.assert_allclose(explanation["gradcam_pixels"], cam.pixels, atol=1e-6)
    with open(BOOT, "rb") as f:
        status, _, occluded = call(server, "/api/runs/lenet5/occlusion?class=Sandal", f.read(), "image/png")
    found = pictures.occlusion(trained.model, x, 5)             # juanji show occlusion
    assert status == 200 and occluded["probability"] == pytest.approx(found.probability, abs=1e-12)
    np.testing.assert_allclose(occluded["drop"], found.drop, atol=1e-6)


def test_inside_is_one_forward_and_one_backward_pass_with_the_arrays_of_the_separate_pictures(served, boot):
    """Saliency and Grad-CAM read off one backward pass equal, bit for bit, those of their own passes."""
    pixels, _ = boot
    trained = served.trained
    x = trained.normalize(pixels)
    calls = {"forward": 0, "backward": 0}
    first = trained.model[0]
    handles = [first.register_forward_hook(lambda *_: calls.__setitem__("forward", calls["forward"] + 1)),
               first.register_full_backward_hook(lambda *_: calls.__setitem__("backward", calls["backward"] + 1))]
    try:
        found = pictures.inside(trained, x, "Sandal")
    finally:
        for handle in handles:
            handle.remove()
    assert calls == {"forward": 1, "backward": 1}
    assert found.chosen == 5
    np.testing.assert_array_equal(found.saliency, pictures.saliency(trained.model, x, 5))
    cam = pictures.gradcam(trained.model, x, 5)
    np.testing.assert_array_equal(found.gradcam.cam, cam.cam)
    np.testing.assert_array_equal(found.gradcam.pixels, cam.pixels)
    assert found.gradcam.layer == cam.layer == "4"


def test_concurrent_requests_get_the_answers_of_their_own_images(server):
    """Layers keep state between forward and backward: the server runs one request at a time per model."""
    images = [np.random.default_rng(seed).random((28, 28)) for seed in range(6)]
    alone = [call(server, "/api/runs/lenet5/explain", pixels_json(x), "application/json")[2] for x in images]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda x: call(server, "/api/runs/lenet5/explain", pixels_json(x),
                                                "application/json")[2], images * 2))
    assert together == alone * 2


def test_features_are_the_maps_after_each_layer_and_redo_the_convolution_by_hand(server, served, boot):
    pixels, _ = boot
    status, _, answer = call(server, "/api/runs/lenet5/features", pixels_json(pixels), "application/json")
    assert status == 200
    x = served.normalize(pixels.astype(np.float32))
    with no_grad():
        expected = feature_maps(served.model, x)
    assert [l["name"] for l in answer["layers"]] == list(expected) == ["0", "1", "2", "3", "4", "5"]
    for layer in answer["layers"]:
        np.testing.assert_allclose(layer["maps"], expected[layer["name"]], atol=1e-6)
    status, _, kernel = call(server, "/api/runs/lenet5/kernels/3")      # map k of layer 3 at (i, j), as the page does
    assert status == 200 and kernel["window"]["padding"] == [0, 0] and kernel["groups"] == 1
    w, b, reads = np.array(kernel["weight"]), np.array(kernel["bias"]), np.array(answer["layers"][2]["maps"])
    k, i, j = 7, 4, 6
    assert answer["layers"][3]["maps"][k][i][j] == pytest.approx(b[k] + (w[k] * reads[:, i:i + 5, j:j + 5]).sum(),
                                                                 abs=1e-4)
    status, kind, png = call(server, "/api/runs/lenet5/features?layer=3&format=png", pixels_json(pixels),
                             "application/json")
    assert status == 200 and kind == "image/png"
    with Image.open(io.BytesIO(png)) as image:                       # 16 maps of 10×10, 4 × 4 with 1-pixel borders
        assert image.size == (43, 43)


def test_explain_gives_saliency_and_the_grad_cam_of_the_chosen_class(server, served, boot):
    pixels, _ = boot
    status, _, answer = call(server, "/api/runs/lenet5/explain?class=Sandal", pixels_json(pixels), "application/json")
    assert status == 200 and answer["class"] == 5 and answer["gradcam_layer"] == "4"
    cam, _, _, _ = grad_cam(served.model, served.normalize(pixels.astype(np.float32)), 5)
    np.testing.assert_allclose(answer["gradcam"], cam, atol=1e-5)
    assert answer["gradcam_centred"]
    np.testing.assert_allclose(answer["gradcam_pixels"], upsample(cam, (28, 28), ((4.5, 2.0), (4.5, 2.0))), atol=1e-5)
    saliency = np.array(answer["saliency"])
    assert saliency.shape == (28, 28) and saliency.max() == 1 and saliency.min() >= 0
    status, _, default = call(server, "/api/runs/lenet5/explain", pixels_json(pixels), "application/json")
    predicted = call(server, "/api/runs/lenet5/predict", pixels_json(pixels), "application/json")[2]
    assert status == 200 and default["class"] == predicted["classes"][0]["index"]


def test_occlusion_is_the_class_probability_under_each_square(server, served, boot):
    pixels, _ = boot
    status, _, answer = call(server, "/api/runs/lenet5/occlusion?class=9&size=7&stride=3", pixels_json(pixels),
                             "application/json")
    assert status == 200 and (answer["class"], answer["size"], answer["stride"]) == (9, 7, 3)
    expected = occlusion_map(served.model, served.normalize(pixels.astype(np.float32)), 9, 7, 3)
    np.testing.assert_allclose(answer["map"], expected, atol=1e-6)
    expected_drop = np.maximum(answer["probability"] - pixel_map(expected, (28, 28), 7, 3), 0)
    np.testing.assert_allclose(answer["drop"], expected_drop, atol=1e-5)


def test_deconv_projects_the_strongest_activation_of_a_map(server, served, boot):
    pixels, _ = boot
    status, _, answer = call(server, "/api/runs/lenet5/deconv?layer=3&map=5", pixels_json(pixels), "application/json")
    assert status == 200 and answer["layer"] == "3" and answer["map"] == 5
    projection, position = deconvnet(served.model, served.normalize(pixels.astype(np.float32)), "3", 5)
    assert answer["position"] == list(position)
    np.testing.assert_allclose(answer["projection"], projection, atol=1e-5)


def test_confusion_and_misclassified_test_images(server, served):
    status, _, answer = call(server, "/api/runs/lenet5/confusion")
    assert status == 200
    matrix = np.array(answer["matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == answer["count"] == 10000
    assert np.trace(matrix) / 10000 == pytest.approx(answer["accuracy"])
    wrong = answer["misclassified"][0]
    assert wrong["true"] != wrong["predicted"]
    status, kind, png = call(server, f"/api/runs/lenet5/test-images/{wrong['index']}")
    assert status == 200 and kind == "image/png"
    with Image.open(io.BytesIO(png)) as image:
        expected = served.test_results()["set"].images[wrong["index"], 0]
        np.testing.assert_allclose(np.asarray(image, dtype=np.float64) / 255, expected, atol=0.5 / 255 + 1e-6)


def test_metrics_follow_metrics_jsonl_as_it_grows(tiny_run, tmp_path):
    run = tmp_path / "growing"
    shutil.copytree(tiny_run, run)
    with serving(run) as url:
        status, _, answer = call(url, "/api/runs/growing/metrics")
        assert status == 200 and [m["epoch"] for m in answer["epochs"]] == [1]
        with open(run / "metrics.jsonl", "a") as f:      # what juanji train does after its next epoch
            f.write(json.dumps({**answer["epochs"][0], "epoch": 2, "test_accuracy": 0.5}) + "\n")
        status, _, answer = call(url, "/api/runs/growing/metrics")
        assert [m["epoch"] for m in answer["epochs"]] == [1, 2] and answer["epochs"][1]["test_accuracy"] == 0.5


def png_bytes(width, height):
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("method, path, body, content_type, status, message", [
    ("POST", "/api/runs/lenet5/predict", b"hello", "image/png", 415, "not an image file"),
    ("POST", "/api/runs/lenet5/predict", b"", "image/png", 400, "empty request body"),
    ("POST", "/api/runs/lenet5/predict", png_bytes(5000, 5000), "image/png", 413, "too large"),
    ("POST", "/api/runs/lenet5/predict", b'{"pixels": [[0.5]]}', "application/json", 400,
     "the model takes (1, 28, 28)"),
    ("POST", "/api/runs/lenet5/predict", b'{"pixels": "abc"}', "application/json", 400, "JSON body must be"),
    ("POST", "/api/runs/lenet5/predict", b'{"pixels": [[0, 1], [0]]}', "application/json", 400, "rows of equal length"),
    ("POST", "/api/runs/lenet5/predict", b"{not json", "application/json", 400, "JSON body must be"),
    ("POST", "/api/runs/lenet5/predict", pixels_json(np.full((28, 28), 2.0)), "application/json", 400, "in [0, 1]"),
    ("POST", "/api/runs/lenet5/features?layer=conv9", pixels_json(np.zeros((28, 28))), "application/json", 404,
     "no layer named 'conv9'"),
    ("POST", "/api/runs/lenet5/features?layer=7", pixels_json(np.zeros((28, 28))), "application/json", 400,
     "not feature maps"),
    ("POST", "/api/runs/lenet5/features?format=png", pixels_json(np.zeros((28, 28))), "application/json", 400,
     "add layer=NAME"),
    ("POST", "/api/runs/lenet5/explain?class=Sock", pixels_json(np.zeros((28, 28))), "application/json", 404,
     "unknown class 'Sock'"),
    ("POST", "/api/runs/lenet5/explain?layer=7", pixels_json(np.zeros((28, 28))), "application/json", 400,
     "not feature maps"),
    ("POST", "/api/runs/lenet5/analyze?class=Sock", pixels_json(np.zeros((28, 28))), "application/json", 404,
     "unknown class 'Sock'"),
    ("POST", "/api/runs/lenet5/analyze?layer=conv9", pixels_json(np.zeros((28, 28))), "application/json", 404,
     "no layer named 'conv9'"),
    ("POST", "/api/runs/lenet5/analyze?center=maybe", pixels_json(np.zeros((28, 28))), "application/json", 400,
     "center yes or no"),
    ("POST", "/api/runs/lenet5/deconv?layer=3&map=16", pixels_json(np.zeros((28, 28))), "application/json", 400,
     "has maps 0…15, not 16"),
    ("POST", "/api/runs/lenet5/deconv?layer=3&map=x", pixels_json(np.zeros((28, 28))), "application/json", 400,
     "map must be a map number"),
    ("POST", "/api/runs/lenet5/deconv?map=1", pixels_json(np.zeros((28, 28))), "application/json", 404,
     "no layer named 'None'"),
    ("POST", "/api/runs/lenet5/occlusion?size=40", pixels_json(np.zeros((28, 28))), "application/json", 400,
     "occluder size must be between 1 and 28"),
    ("POST", "/api/runs/lenet5/occlusion?stride=-2", pixels_json(np.zeros((28, 28))), "application/json", 400,
     "stride must be a whole number"),
    ("GET", "/api/runs/lenet5/kernels/1", None, None, 404, "no convolution layer named '1'"),
    ("GET", "/api/runs/lenet5/test-images/10000", None, None, 404, "the test set has 10000 images"),
    ("GET", "/api/runs/lenet5/test-images/-1", None, None, 404, "numbered 0, 1, 2"),
    ("GET", "/api/runs/lenet5/predict", None, None, 405, "Method Not Allowed"),
    ("GET", "/api/runs/nothere/metrics", None, None, 404, "no run named 'nothere'; the runs are lenet5"),
    ("GET", "/api/runs/..%2F..%2Fetc%2Fpasswd/metrics", None, None, 404, "Not Found"),   # no route matches
    ("GET", "/api/runs/%2E%2E/metrics", None, None, 404, "no run named '..'"),
    ("GET", "/api/nothing", None, None, 404, "Not Found"),
], ids=lambda value: value if isinstance(value, (str, int)) and len(str(value)) < 60 else "")
def test_bad_requests_get_a_4xx_json_error(server, method, path, body, content_type, status, message):
    got, kind, answer = call(server, path, body, content_type, method)
    assert (got, kind) == (status, "application/json")
    assert message in answer["error"]


def test_a_body_over_the_limit_is_refused_before_it_is_read(server):
    host, port = urllib.parse.urlsplit(server).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/api/runs/lenet5/predict")
    connection.putheader("Content-Type", "image/png")
    connection.putheader("Content-Length", str(9 * 2 ** 20))
    connection.endheaders()                            # the 9 MiB never follow: the answer comes first
    response = connection.getresponse()
    assert response.status == 413 and "over 8 MiB" in json.loads(response.read())["error"]


@pytest.mark.parametrize("path", ["/static/../app.py", "/static/..%2F..%2Fcli.py", "/static/%2e%2e/run.py",
                                  "/static//etc/passwd", "/../../../etc/passwd"])
def test_no_file_outside_the_static_folder_is_served(server, path):
    host, port = urllib.parse.urlsplit(server).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("GET", path)                    # sent as written: no client-side normalisation
    response = connection.getresponse()
    body = response.read()
    assert response.status == 404 and b"import" not in body and b"root:" not in body


def test_the_page_and_its_files_are_served_by_juanji(server):
    status, kind, page = call(server, "/")
    assert status == 200 and kind.startswith("text/html")
    assert b'src="/static/app.js"' in page and b"http" not in page.replace(b"http://www.w3.org", b"")
    for name in ("app.js", "style.css"):
        status, _, text = call(server, f"/static/{name}")
        assert status == 200 and b"https://" not in text and b"cdn" not in text.lower()
