import math

import numpy as np
import pytest
import torch

from c3seg.evaluation.metrics import ConfusionMatrix, label_f1, mean_iou


def test_hand_computed_iou_with_void_and_absent_class():
    cm = ConfusionMatrix(3)
    target = torch.tensor([0, 0, 1, 1, 255])
    pred = torch.tensor([0, 1, 1, 1, 2])  # the void pixel's prediction (2) is dropped with it
    cm.update(target, pred)
    iou = cm.iou()
    assert iou[0] == pytest.approx(1 / 2)  # TP 1, FN 1
    assert iou[1] == pytest.approx(2 / 3)  # TP 2, FP 1
    assert math.isnan(iou[2])  # absent from truth and prediction: not counted
    assert mean_iou(iou) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_zero_true_positive_class_counts_as_zero():
    cm = ConfusionMatrix(3)
    cm.update(np.array([[2, 2], [0, 0]]), np.array([[0, 0], [0, 1]]))
    iou = cm.iou()
    assert iou[2] == 0.0  # in the truth, never predicted
    assert iou[1] == 0.0  # predicted, never in the truth
    assert iou[0] == pytest.approx(1 / 4)
    assert mean_iou(iou) == pytest.approx(1 / 12)
    assert mean_iou(iou, [1, 2]) == 0.0


def test_accumulates_over_the_set_not_per_image():
    a, b = ConfusionMatrix(2), ConfusionMatrix(2)
    a.update([1, 1, 1, 1], [1, 1, 1, 1])
    b.update([1, 0], [0, 0])
    a.merge(b)
    # one matrix: TP1 = 4, FN1 = 1 -> 0.8 (a per-image mean would give (1 + 0) / 2)
    assert a.iou()[1] == pytest.approx(0.8)


def test_rejects_bad_predictions_and_shapes():
    cm = ConfusionMatrix(2)
    with pytest.raises(ValueError):
        cm.update([0, 1], [0, 5])
    with pytest.raises(ValueError):
        cm.update([0, 1], [0])


def test_label_f1_against_image_labels():
    pred = np.zeros((10, 10), np.int64)
    assert label_f1(pred, []) == 1.0  # nothing labelled, nothing predicted
    assert label_f1(pred, [3]) == 0.0  # a labelled class never predicted
    pred[:5] = 3
    assert label_f1(pred, [3]) == 1.0
    pred[9, 9] = 4  # one pixel (1%) of an unlabelled class
    assert label_f1(pred, [3], min_fraction=0.02) == 1.0  # below the size threshold: ignored
    assert label_f1(pred, [3], min_fraction=0.005) == pytest.approx(2 / 3)
    assert label_f1(pred, [3, 5], min_fraction=0.02) == pytest.approx(2 / 3)  # recall 1/2, precision 1
