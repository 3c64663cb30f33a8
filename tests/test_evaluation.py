"""evaluate: exact metrics from a model whose answers are known, and a trained model on real MNIST."""
import numpy as np
import pytest
import torch

from helpers.evaluation import Evaluation, evaluate
from helpers.protocol import ModelProtocolError
from helpers.training import fit, seed_everything
from student_style import MNISTClassifier, datasets


@pytest.fixture(scope="module")
def test_set(real_mnist_root):
    return datasets()[1]


class Oracle(torch.nn.Module):
    """Answers from the labels: right, except every 3 is called a 5 (with probability 0.9)."""

    def forward(self, batch):
        pred = batch["labels"].clone()
        pred[pred == 3] = 5
        probs = torch.full((len(pred), 10), 0.1 / 9)
        probs[torch.arange(len(pred)), pred] = 0.9
        return {"probs": probs, "pred": pred}


def test_metrics_are_exact_for_known_answers(test_set):
    result = evaluate(Oracle(), test_set, batch_size=300)
    labels = test_set.labels
    threes = int((labels == 3).sum())
    assert isinstance(result, Evaluation)
    np.testing.assert_array_equal(result.labels, labels)
    assert result.accuracy == pytest.approx(1 - threes / len(labels))
    expected = np.zeros((10, 10), dtype=np.int64)
    np.add.at(expected, (labels, np.where(labels == 3, 5, labels)), 1)
    np.testing.assert_array_equal(result.confusion, expected)
    assert result.confusion[3, 5] == threes and result.confusion[3].sum() == threes
    assert result.per_class_accuracy[3] == 0 and np.all(np.delete(result.per_class_accuracy, 3) == 1)
    assert result.probs.shape == (len(labels), 10) and result.preds.shape == (len(labels),)
    # cross entropy from the probabilities: -log 0.9 where right, -log(0.1/9) for the threes
    expected_loss = ((len(labels) - threes) * -np.log(0.9) + threes * -np.log(0.1 / 9)) / len(labels)
    assert result.loss == pytest.approx(expected_loss, rel=1e-5)
    np.testing.assert_array_equal(result.mistakes, np.flatnonzero(labels == 3))


def test_evaluate_a_trained_model_on_real_mnist(test_set):
    train_set = datasets()[0]
    seed_everything(0)
    model = MNISTClassifier(32)
    history = fit(model, train_set, epochs=3, lr=1e-2, progress=False)
    model.train()  # evaluate must switch to eval mode itself
    result = evaluate(model, test_set)
    assert not model.training
    assert result.accuracy > 0.8
    assert result.accuracy == pytest.approx(np.trace(result.confusion) / len(test_set))
    np.testing.assert_allclose(result.probs.sum(axis=1), 1, rtol=1e-5)
    assert history.epochs[-1]["val_acc"] is None  # no val_data given


def test_evaluate_refuses_a_model_that_breaks_the_eval_protocol(test_set):
    class TrainOutputOnly(MNISTClassifier):
        def forward(self, batch):
            return {"logits": self.fc2(self.fc1(batch["images"]))}

    with pytest.raises(ModelProtocolError, match=r"in eval mode.*missing \['pred', 'probs'\]|missing \['probs', 'pred'\]"):
        evaluate(TrainOutputOnly(), test_set)
