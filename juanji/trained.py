"""A trained model as a type: the network in eval mode with what it was trained on (class names, input shape,
normalisation, alphabet), read from a run directory or a checkpoint file and checked once by the header schema.

    trained = TrainedModel.load("runs/lenet5")          # its best.npz; or a checkpoint file
    pixels, x = trained.prepare("boot.jpg")             # an image file as the model takes it
    trained.model(x[None]).argmax()                     # → an index into trained.classes
    trained.evaluate(trained.test_set())                # accuracy, loss, predictions on its own test set

``juanji eval/predict/show/export`` and the web server read trained models only through it.
"""
from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass

import numpy as np

from . import checkpoint as ckpt
from . import models
from .data import DataLoader, segmentation, sequences
from .data.folder import load_datasets
from .data.images import load_image
from .data.photo import is_light_background, prepare_photo
from .data.transforms import Normalize
from .io import file_kind
from .metrics import evaluate
from .runs import Run

EVAL_BATCH_SIZE = 1000          # images per forward pass when evaluating: no gradients, so memory is small
INVERT = ("auto", "yes", "no")  # prepare's choices for turning a photo into its negative


def checkpoint_file(run_or_checkpoint) -> str:
    """The checkpoint a command reads: a run directory's best.npz, or the file given; OSError for what is not a
    regular file (a FIFO, a device: nothing is read from it)."""
    path = os.fspath(run_or_checkpoint)
    if os.path.isdir(path):
        run = Run(path)
        if not os.path.exists(run.best):
            raise FileNotFoundError(f"{path}: a folder without best.npz, not a juanji run")
        path = run.best
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such checkpoint file") from None
    if not stat.S_ISREG(mode):
        raise OSError(f"{path}: it is {file_kind(mode)}, not a checkpoint file")
    return path


def is_folder(data) -> bool:
    """True when ``--data`` names a folder: not the default data set (None), nor a task such as ``words``."""
    return data is not None and not sequences.is_task(data) and not segmentation.is_task(data)


def eval_loader(test_set, normalization=None, batch_size: int = EVAL_BATCH_SIZE) -> DataLoader:
    """Batches of ``batch_size`` of ``test_set``, normalised with the training set's (mean, std)."""
    transform = Normalize(*normalization) if normalization else None
    return DataLoader(test_set, batch_size, transform=transform)


@dataclass(frozen=True)
class TrainedModel:
    """A trained network and its description.

    - ``model``: the network, in eval mode;
    - ``classes``: its class names, index by index ("0" … "K−1" where training named none);
    - ``input_shape``: one sample's shape, (C, H, W) for images or (L,) for token sequences;
    - ``normalization``: the training set's ([mean per channel], [std per channel]), or None;
    - ``alphabet``: the characters of a text run's vocabulary (None for images);
    - ``config``: the training configuration (``juanji.schema.TrainConfig``'s fields), or {} if not stored;
    - ``epoch``, ``test_accuracy``: the epoch it was saved after and its test accuracy then, where stored;
    - ``checkpoint``: the file it was read from;
    - ``history``: the metrics of every epoch up to ``epoch`` (the lines metrics.jsonl began with), or None.
    """
    model: object
    classes: list
    input_shape: tuple
    normalization: tuple | None
    alphabet: str | None
    config: dict
    epoch: int | None
    test_accuracy: float | None
    checkpoint: str
    history: list | None = None

    @classmethod
    def load(cls, run_or_checkpoint) -> "TrainedModel":
        """From a run directory (its best.npz) or a checkpoint file; the header is validated by the schema
        and the arrays' sizes checked before anything is built (``juanji.checkpoint``)."""
        path = checkpoint_file(run_or_checkpoint)
        model = ckpt.build_model(ckpt.read_meta(path), source=path)
        state = ckpt.load(path, model)
        ckpt.restore_model(state, model, source=path)
        model.eval()
        meta = state.meta
        data = meta.get("data") or {}
        model_config = (meta.get("model") or {}).get("config") or {}
        input_shape = data.get("input_shape") or getattr(model, "input_shape", None)
        if not input_shape:
            raise ckpt.CheckpointError(f"{path}: the header gives no input shape (data.input_shape) and the "
                                       f"model {type(model).__name__} has none")
        classes = data.get("classes") or [str(i) for i in range(model_config.get("num_classes", 10))]
        normalization = data.get("normalization")
        return cls(model=model, classes=list(classes), input_shape=tuple(input_shape),
                   normalization=tuple(normalization) if normalization else None, alphabet=data.get("alphabet"),
                   config=meta.get("config") or {}, epoch=meta.get("epoch"),
                   test_accuracy=(meta.get("metrics") or {}).get("test_accuracy"), checkpoint=path,
                   history=meta.get("history"))

    @property
    def is_text(self) -> bool:
        """True for a model of token sequences (its inputs are words, not images)."""
        return self.alphabet is not None

    @property
    def is_segmentation(self) -> bool:
        """True for a model that labels every pixel (``models.is_segmentation``: the U-Net), not whole inputs."""
        name = getattr(self.model, "name", None)
        return name is not None and models.is_segmentation(name)

    @property
    def run_dir(self) -> str:
        """The run directory the checkpoint belongs to (its folder, for a file given directly)."""
        folder = os.path.dirname(self.checkpoint)
        return os.path.dirname(folder) if os.path.basename(folder) == "checkpoints" else folder

    def class_index(self, name: str) -> int:
        """The index of a class given by name (exact, else ignoring case) or by number; ValueError names the
        classes.  The one lookup rule of the command line and the page."""
        if name in self.classes:
            return self.classes.index(name)
        folded = [c.casefold() for c in self.classes]
        if name.casefold() in folded:
            return folded.index(name.casefold())
        if name.isdigit() and int(name) < len(self.classes):
            return int(name)
        raise ValueError(f"unknown class '{name}' (classes: {', '.join(self.classes)})")

    # -- inputs ------------------------------------------------------------------------------------
    def normalize(self, pixels) -> np.ndarray:
        """Pixels (C, H, W) or (N, C, H, W) in [0, 1] → the model's input, (x − mean[c]) / std[c] as in
        training, in the model's dtype."""
        pixels = np.asarray(pixels, dtype=self.model.dtype or np.float32)
        if not self.normalization:
            return pixels
        batch = pixels if pixels.ndim == 4 else pixels[None]
        out = Normalize(*self.normalization)(batch)
        return out if pixels.ndim == 4 else out[0]

    def prepare(self, path, invert: str = "auto", center: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """An image file as the model takes it: (pixels (C, H, W) in [0, 1], model input (C, H, W)).

        The shorter side is scaled to the model's input size and the centre cut out (as for image-folder
        training), then the pixels are normalised with the training set's mean and std.

        - ``invert`` "auto" turns a photo with a light background (its border, see ``juanji.data.photo``) into
          its negative, x → 1 − x, when the training images were dark on average (their mean, stored in the
          checkpoint, below 0.5: Fashion-MNIST's is 0.29); "yes" and "no" decide it whatever the photo.
        - ``center`` (grayscale, square models) instead cuts the photo to its object and centres it on a black
          square the object's longer side fills, as Fashion-MNIST's pictures are made (``prepare_photo``).
        """
        if self.is_text:
            raise ValueError(f"{path}: the model reads words (a text run), not images")
        if invert not in INVERT:
            raise ValueError(f"invert must be one of {', '.join(INVERT)}, got {invert!r}")
        channels, height, width = self.input_shape
        trained_dark = self.normalization is not None and float(np.mean(self.normalization[0])) < 0.5

        def inverts(photo) -> bool:
            return invert == "yes" or (invert == "auto" and trained_dark and is_light_background(photo.mean(axis=0)))

        if center:
            if channels != 1 or height != width:
                raise ValueError(f"{path}: centring prepares a photo for a grayscale model with square inputs; "
                                 f"this one takes {channels}×{height}×{width}")
            photo = load_image(path, channels=1)
            pixels = prepare_photo(photo, size=height, invert=inverts(photo), center=True)
        else:
            pixels = load_image(path, channels=channels, size=(height, width), crop=True)
            pixels = 1 - pixels if inverts(pixels) else pixels
        return pixels, self.normalize(pixels)

    def encode(self, words: list[str]) -> np.ndarray:
        """Words as a text model takes them: token ids (N, L), lower-cased, padded or cut to L."""
        if not self.is_text:
            raise ValueError("the model reads images, not words")
        return sequences.encode([w.lower() for w in words], self.alphabet, self.input_shape[0])

    # -- its data ----------------------------------------------------------------------------------
    @property
    def data(self) -> str | None:
        """The data it was trained on as its config names it: None (the default data set), a task name
        (``words``), or a folder's absolute path.  A relative one, stored as typed by an older juanji, is taken
        relative to the run directory, with a warning: the folder training started from is not known."""
        data = self.config.get("data")
        if not is_folder(data) or os.path.isabs(data):
            return data
        resolved = os.path.join(self.run_dir, data)
        warnings.warn(f"{self.checkpoint}: the data folder '{data}' was stored relative to the folder training "
                      f"started from, which is not known; reading {resolved} (pass --data to choose)", stacklevel=2)
        return resolved

    def test_set(self, data=None):
        """The test set of the data it was trained on (``data`` above) or of ``data``, prepared as in training;
        ValueError when its labels are not among the model's classes."""
        data = data or self.data
        if sequences.is_task(data):
            return sequences.load_task(data)[1]
        if segmentation.is_task(data):
            return segmentation.load_task(data)[1]
        channels, size, _ = self.input_shape
        _, test_set, _ = load_datasets(data, image_size=size, channels=channels,
                                       skip_bad=self.config.get("skip_bad", False))
        if len(test_set) and int(test_set.labels.max()) >= len(self.classes):
            raise ValueError(f"{data or 'the default data'}: {len(test_set.classes)} classes, the model has "
                             f"{len(self.classes)}; pass --data the data it was trained on")
        return test_set

    def evaluate(self, test_set, batch_size: int = EVAL_BATCH_SIZE) -> dict:
        """``juanji.metrics.evaluate`` on ``test_set`` in batches of ``batch_size``, normalised as in training,
        with the predictions."""
        return evaluate(self.model, eval_loader(test_set, self.normalization, batch_size), return_predictions=True)
