"""How well a model does: mean loss, accuracy and predictions over a loader, and the confusion matrix."""
import numpy as np

from . import nn


def evaluate(model, loader, loss_fn=None, return_predictions=False) -> dict:
    """Mean loss and accuracy of ``model`` (in eval mode, without a cache) over ``loader``; with
    ``return_predictions`` also the predicted class of every sample (N,)."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    total_loss, correct, count, predictions = 0.0, 0, 0, []
    for x, y in loader:
        with nn.no_grad():
            logits = model(x)
        total_loss += float(loss_fn(logits, y)) * len(y)
        predicted = logits.argmax(axis=1)
        correct += int((predicted == y).sum())
        count += len(y)
        predictions.append(predicted)
    model.train(was_training)
    result = {"loss": total_loss / count, "accuracy": correct / count}
    if return_predictions:
        result["predictions"] = np.concatenate(predictions)
    return result


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """counts[true, predicted]: how often class ``true`` was predicted as ``predicted``; (K, K) int64."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return np.bincount(labels * num_classes + predictions, minlength=num_classes ** 2).reshape(num_classes, -1)
