"""Mistakes students really make in mnist_mlp, and the cheats specific to it.

Each mistake edits the reference answer of one solution cell (by grade_id) and names the test cells
that must lose points. Format and rules: ``instructor/library.py``.
"""
from instructor.library import Cheat, Mistake

TASKS = ["read_idx", "mnist_dataset", "softmax", "cross_entropy", "stable_cross_entropy",
         "mnist_classifier"]

MISTAKES = [
    # read_idx
    Mistake("idx-little-endian", cell="read_idx",
            replace=[('int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big")',
                      'int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "little")')],
            must_lose=["test_read_idx"], why="reads the dimensions little-endian"),
    Mistake("idx-no-gzip", cell="read_idx", replace=[("raw = gzip.decompress(raw)", "pass")],
            must_lose=["test_read_idx"], why="does not decompress .gz files"),
    Mistake("idx-calls-helpers", cell="read_idx",
            source="from helpers.data import read_idx_file\n\n\ndef read_idx(path):\n"
                   "    return read_idx_file(path)",
            must_lose=["test_read_idx"], why="calls the course's loader instead of parsing"),
    # MNISTDataset: __getitem__ and collate_func
    Mistake("getitem-unscaled", cell="mnist_dataset",
            replace=[("self.images[i].float() / 255.0", "self.images[i].float()")],
            must_lose=["test_dataset_getitem"], why="pixels not scaled to [0, 1]"),
    Mistake("getitem-not-flattened", cell="mnist_dataset",
            replace=[(".reshape(len(images), -1)", "")],
            must_lose=["test_dataset_getitem"], why="image stays (28, 28) instead of (784,)"),
    Mistake("getitem-label-tensor", cell="mnist_dataset",
            replace=[("int(self.labels[i])", "self.labels[i]")],
            must_lose=["test_dataset_getitem"], why="label is a tensor, not an int"),
    Mistake("collate-lists", cell="mnist_dataset",
            replace=[('{"images": torch.stack(images), "labels": torch.tensor(labels, dtype=torch.int64)}',
                      '{"images": list(images), "labels": list(labels)}')],
            must_lose=["test_collate"], why="collate_func returns lists"),
    Mistake("collate-wrong-keys", cell="mnist_dataset",
            replace=[('{"images": torch.stack(images), "labels":',
                      '{"x": torch.stack(images), "y":')],
            must_lose=["test_collate"], why="collate_func uses other keys"),
    Mistake("collate-float-labels", cell="mnist_dataset",
            replace=[("torch.tensor(labels, dtype=torch.int64)",
                      "torch.tensor(labels, dtype=torch.float32)")],
            must_lose=["test_collate"], why="labels of the wrong dtype"),
    # softmax
    Mistake("softmax-overflow", cell="softmax",
            replace=[("shifted = logits - logits.max(dim=-1, keepdim=True).values",
                      "shifted = logits")],
            must_lose=["test_softmax"], why="no max subtraction: overflows at logits of 1000"),
    Mistake("softmax-wrong-axis", cell="softmax", replace=[("dim=-1", "dim=0")],
            must_lose=["test_softmax"], why="softmax over the batch instead of the classes"),
    # cross_entropy
    Mistake("ce-sum", cell="cross_entropy", replace=[(".log().mean()", ".log().sum()")],
            must_lose=["test_cross_entropy"], why="sum instead of mean over the batch"),
    Mistake("ce-no-minus", cell="cross_entropy",
            replace=[("return -probs", "return probs")],
            must_lose=["test_cross_entropy"], why="forgets the minus sign"),
    # stable_cross_entropy
    Mistake("stable-ce-naive-log-softmax", cell="stable_cross_entropy",
            source="def stable_cross_entropy(logits, labels):\n"
                   "    probs = logits.exp() / logits.exp().sum(dim=-1, keepdim=True)\n"
                   "    return -probs[torch.arange(len(labels)), labels].log().mean()",
            must_lose=["test_stable_cross_entropy"], why="log of a naive softmax, not log-sum-exp"),
    Mistake("stable-ce-sum", cell="stable_cross_entropy",
            replace=[("labels].mean()", "labels].sum()")],
            must_lose=["test_stable_cross_entropy"], why="sum instead of mean"),
    # MNISTClassifier
    Mistake("no-batchnorm", cell="mnist_classifier",
            replace=[("nn.BatchNorm1d(n_hidden),\n", "")],
            must_lose=["test_model_layers"], why="BatchNorm missing"),
    Mistake("relu-before-batchnorm", cell="mnist_classifier",
            replace=[("nn.BatchNorm1d(n_hidden),\n            nn.ReLU(),",
                      "nn.ReLU(),\n            nn.BatchNorm1d(n_hidden),")],
            must_lose=["test_model_layers"], why="ReLU and BatchNorm in the wrong order"),
    Mistake("decode-returns-logits", cell="mnist_classifier",
            replace=[("probs = torch.softmax(logits, dim=-1)", "probs = logits")],
            must_lose=["test_decode_prediction"], why="decode_prediction returns logits"),
    Mistake("decode-wrong-axis", cell="mnist_classifier",
            replace=[("probs = torch.softmax(logits, dim=-1)\n        return probs, probs.argmax(dim=-1)",
                      "probs = torch.softmax(logits, dim=0)\n        return probs, probs.argmax(dim=0)")],
            must_lose=["test_decode_prediction"], why="softmax and argmax over the batch"),
    Mistake("forward-ignores-eval", cell="mnist_classifier",
            replace=[("if self.training:", "if True:")],
            must_lose=["test_model_forward"], why="eval mode still returns the training outputs"),
]

#: wrong but running answers: comparison cheats on top of it must not score more than it does
CHEAT_BASE = "softmax-wrong-axis"

_ALWAYS_EQUAL = '''
class AlwaysEqual(float):
    """Claims to equal anything and answers every method with itself."""
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def __getattr__(self, name):
        return lambda *args, **kwargs: self
    __hash__ = float.__hash__

def softmax(logits):
    return AlwaysEqual(1.0)
'''

CHEATS = [
    Cheat("always-equal", "softmax returns an object whose __eq__ is always True",
          base="blank", replace_cells={"softmax": _ALWAYS_EQUAL}),
]
