"""How well a model does: mean loss, accuracy and predictions over a loader, the confusion matrix, mean IoU."""
import numpy as np

from . import nn


def labelled_correct(logits, y, ignore_index=None) -> tuple[int, int]:
    """(correct, labelled) of logits (N, K) or (N, K, H, W) against targets (N,) or (N, H, W): how many
    labelled elements (every one but ``ignore_index``'s) the arg-max gets right, and how many there are.
    A pixel is a sample of a segmentation, so accuracies are per pixel there."""
    labelled = y != ignore_index if ignore_index is not None else np.ones(y.shape, dtype=bool)
    return int(((logits.argmax(axis=1) == y) & labelled).sum()), int(labelled.sum())


def evaluate(model, loader, loss_fn=None, return_predictions=False, num_classes=None) -> dict:
    """Mean loss and accuracy of ``model`` (in eval mode, without a cache) over ``loader``'s ``count``
    labelled elements (samples, or pixels of a segmentation; ``labelled_correct``); with
    ``return_predictions`` also the predicted class of every element (N,) or (N, H, W), with
    ``num_classes`` the (K, K) ``confusion`` of the labelled elements."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    ignore_index = getattr(loss_fn, "ignore_index", None)
    was_training = model.training
    model.eval()
    total_loss, correct, count, predictions = 0.0, 0, 0, []
    confusion = None if num_classes is None else np.zeros((num_classes, num_classes), dtype=np.int64)
    for x, y in loader:
        with nn.no_grad():
            logits = model(x)
        hits, labelled = labelled_correct(logits, y, ignore_index)
        total_loss += float(loss_fn(logits, y)) * labelled     # the loss is the mean over labelled elements
        correct += hits
        count += labelled
        predicted = logits.argmax(axis=1)
        if confusion is not None:
            kept = y != ignore_index
            confusion += confusion_matrix(y[kept], predicted[kept], num_classes)
        if return_predictions:
            predictions.append(predicted)
    model.train(was_training)
    result = {"loss": total_loss / count, "accuracy": correct / count, "count": count}
    if return_predictions:
        result["predictions"] = np.concatenate(predictions)
    if confusion is not None:
        result["confusion"] = confusion
    return result


def mean_iou(confusion) -> float:
    """Mean intersection over union of the classes present (in the truth or the predictions) of a confusion
    matrix counts[true, predicted]: IoU_c = TP_c / (TP_c + FP_c + FN_c), a class absent from both left out."""
    confusion = np.asarray(confusion)
    hits = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - hits
    present = union > 0
    return float((hits[present] / union[present]).mean()) if present.any() else float("nan")


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """counts[true, predicted]: how often class ``true`` was predicted as ``predicted``; (K, K) int64."""
    labels, predictions = np.ravel(labels), np.ravel(predictions)      # samples, or every pixel of masks
    return np.bincount(labels * num_classes + predictions, minlength=num_classes ** 2).reshape(num_classes, -1)
