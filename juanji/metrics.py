"""Measures of a classifier's predictions (used by ``juanji eval`` and ``juanji show confusion``)."""
import numpy as np


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """counts[true, predicted]: how often class ``true`` was predicted as ``predicted``; (K, K) int64."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return np.bincount(labels * num_classes + predictions, minlength=num_classes ** 2).reshape(num_classes, -1)
