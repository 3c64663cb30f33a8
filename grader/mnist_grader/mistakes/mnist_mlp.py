"""Mistakes students really make in mnist_mlp, and the cheats specific to it.

Each mistake edits the reference answer of one solution cell (by grade_id) and names the test cells
that must lose points. Format and rules: ``grader/mnist_grader/library.py``.
"""
from mnist_grader.library import Alternative, Cheat, Mistake

TASKS = ["read_idx", "mnist_dataset", "softmax", "cross_entropy", "stable_cross_entropy",
         "mnist_classifier", "train_one_epoch"]

MISTAKES = [
    # read_idx
    Mistake("idx-little-endian", cell="read_idx",
            replace=[('int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big")',
                      'int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "little")')],
            must_lose=["test_read_idx", "test_read_idx_types"], why="reads the dimensions little-endian"),
    Mistake("idx-no-gzip", cell="read_idx", replace=[("raw = gzip.decompress(raw)", "pass")],
            must_lose=["test_read_idx", "test_read_idx_types"], why="does not decompress .gz files"),
    Mistake("idx-calls-helpers", cell="read_idx",
            source="from helpers.data import read_idx_file\n\n\ndef read_idx(path):\n"
                   "    return read_idx_file(path)",
            must_lose=["test_read_idx", "test_read_idx_types"],
            why="calls the course's loader instead of parsing"),
    # the type codes other than MNIST's own (test_read_idx_types only: uint8 keeps its points)
    Mistake("idx-uint8-only", cell="read_idx",
            replace=[("dtype, ndim = np.dtype(idx_types[raw[2]]), raw[3]", "dtype, ndim = np.dtype(np.uint8), raw[3]")],
            must_lose=["test_read_idx_types"], why="reads every file as unsigned bytes, whatever its type code"),
    Mistake("idx-native-byte-order", cell="read_idx",
            replace=[('{0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}',
                      '{0x08: "u1", 0x09: "i1", 0x0B: "i2", 0x0C: "i4", 0x0D: "f4", 0x0E: "f8"}')],
            must_lose=["test_read_idx_types"], why="reads multi-byte values in the machine's (little-endian) order"),
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
    Mistake("model-torch-loss", cell="mnist_classifier",
            replace=[("self.loss_fnc = stable_cross_entropy", "self.loss_fnc = nn.CrossEntropyLoss()")],
            must_lose=["test_model_layers"], why="trains with PyTorch's loss instead of the one from Part 2.3"),
    # train_one_epoch: the six steps
    Mistake("loop-no-zero-grad", cell="train_one_epoch",
            replace=[("        optimizer.zero_grad()\n", "")],
            must_lose=["test_train_one_epoch"], why="never zeroes the gradients: they accumulate over the epoch"),
    Mistake("loop-zero-grad-after-backward", cell="train_one_epoch",
            replace=[("        optimizer.zero_grad()\n        loss.backward()\n",
                      "        loss.backward()\n        optimizer.zero_grad()\n")],
            must_lose=["test_train_one_epoch"], why="zeroes the gradients between backward and step"),
    Mistake("loop-unweighted-mean", cell="train_one_epoch",
            replace=[("return loss_sum / seen", "return sum(step_losses[-len(loader):]) / len(loader)")],
            must_lose=["test_train_one_epoch"], why="averages the batch losses without weighting by batch size"),
    Mistake("loop-no-train-mode", cell="train_one_epoch",
            replace=[("    model.train()\n", "")],
            must_lose=["test_train_one_epoch"], why="leaves the model in evaluation mode after validation"),
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

# Correct answers in other styles than the reference: each must keep full marks, with no hold and no
# flag (the trusted run's policy must not punish honest variety).
_READ_IDX_STRUCT = '''
import struct

_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: "i2", 0x0C: "i4", 0x0D: "f4", 0x0E: "f8"}


def read_idx(path):
    """Parse an IDX file with struct for the header."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\\x1f\\x8b":
        data = gzip.decompress(data)
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _IDX_TYPES:
        raise ValueError("not an IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    big = np.dtype(">" + _IDX_TYPES[code])
    count = 1
    for size in shape:
        count *= size
    values = np.frombuffer(data, dtype=big, count=count, offset=4 + 4 * ndim)
    return values.reshape(shape).astype(big.newbyteorder("="))
'''

_READ_IDX_PATHLIB = '''
from pathlib import Path

DTYPES = {8: np.uint8, 9: np.int8, 11: np.int16, 12: np.int32, 13: np.float32, 14: np.float64}


def read_idx(path):
    raw = Path(path).read_bytes()
    if raw.startswith(b"\\x1f\\x8b"):
        raw = gzip.decompress(raw)
    dtype = np.dtype(DTYPES[raw[2]]).newbyteorder(">")
    dims = [int.from_bytes(raw[4 + 4 * k:8 + 4 * k], byteorder="big") for k in range(raw[3])]
    body = raw[4 + 4 * len(dims):]
    array = np.frombuffer(body, dtype=dtype)[:int(np.prod(dims, dtype=np.int64))]
    return array.reshape(dims).astype(dtype.newbyteorder("="))
'''

_READ_IDX_GZIP_OPEN = '''
import math


def read_idx(path):
    with open(path, "rb") as probe:
        compressed = probe.read(2) == b"\\x1f\\x8b"
    opener = gzip.open if compressed else open
    with opener(path, "rb") as f:
        header = f.read(4)
        ndim = header[3]
        shape = tuple(int.from_bytes(f.read(4), "big") for _ in range(ndim))
        kind = {8: ">u1", 9: ">i1", 11: ">i2", 12: ">i4", 13: ">f4", 14: ">f8"}[header[2]]
        values = np.frombuffer(f.read(), dtype=kind, count=math.prod(shape))
    return values.reshape(shape).astype(np.dtype(kind).newbyteorder("="))
'''

_DATASET_NUMPY = '''
class MNISTDataset(torch.utils.data.Dataset):
    """Keeps numpy arrays; converts one sample at a time."""

    def __init__(self, images, labels):
        self.images = np.asarray(images)
        self.labels = np.asarray(labels)

    def __len__(self):
        return self.labels.shape[0]

    def __getitem__(self, i):
        image = torch.from_numpy(self.images[i].reshape(-1).astype(np.float32) / 255.0)
        return image, int(self.labels[i])

    def collate_func(self, samples):
        images = torch.stack([image for image, _ in samples])
        labels = torch.as_tensor([label for _, label in samples], dtype=torch.long)
        return {"images": images, "labels": labels}
'''

_DATASET_FLOAT_TENSORS = '''
class MNISTDataset(torch.utils.data.Dataset):
    def __init__(self, images, labels):
        super().__init__()
        self._x = torch.as_tensor(np.array(images), dtype=torch.float32).flatten(1) / 255
        self._y = [int(y) for y in labels]

    def __len__(self):
        return len(self._y)

    def __getitem__(self, i):
        return self._x[i], self._y[i]

    def collate_func(self, samples):
        xs, ys = [], []
        for x, y in samples:
            xs.append(x.unsqueeze(0))
            ys.append(y)
        return {"images": torch.cat(xs, dim=0), "labels": torch.tensor(ys)}
'''

_SOFTMAX_AMAX = '''
def softmax(logits):
    z = torch.exp(logits - torch.amax(logits, dim=-1, keepdim=True))
    return z / torch.sum(z, dim=-1, keepdim=True)
'''

_SOFTMAX_TORCH_MAX = '''
def softmax(logits):
    largest, _ = torch.max(logits, dim=logits.dim() - 1, keepdim=True)
    e = (logits - largest).exp()
    total = e.sum(dim=logits.dim() - 1, keepdim=True)
    return e.div(total)
'''

_CE_GATHER = '''
def cross_entropy(probs, labels):
    picked = probs.gather(1, labels.view(-1, 1)).squeeze(1)
    return picked.log().mean().neg()
'''

_CE_ONE_HOT = '''
import torch.nn.functional as F


def cross_entropy(probs, labels):
    one_hot = F.one_hot(labels, num_classes=probs.shape[1]).to(probs.dtype)
    return -(one_hot * torch.log(probs)).sum() / probs.shape[0]
'''

_STABLE_CE_GATHER = '''
def stable_cross_entropy(logits, labels):
    m = logits.max(dim=1, keepdim=True).values
    log_norm = m + torch.log(torch.exp(logits - m).sum(dim=1, keepdim=True))
    true_logit = logits.gather(1, labels.unsqueeze(1))
    return (log_norm - true_logit).mean()
'''

_STABLE_CE_LOOP = '''
import math


def stable_cross_entropy(logits, labels):
    losses = []
    for row, label in zip(logits, labels):
        m = row.max()
        losses.append(m + (row - m).exp().sum().log() - row[label])
    return torch.stack(losses).sum() / len(losses)
'''

_CLASSIFIER_ORDERED_DICT = '''
from collections import OrderedDict


class MNISTClassifier(nn.Module):
    def __init__(self, n_hidden):
        super().__init__()
        self.net = nn.Sequential(OrderedDict([
            ("hidden", nn.Linear(28 * 28, n_hidden)),
            ("norm", nn.BatchNorm1d(n_hidden)),
            ("relu", nn.ReLU()),
            ("out", nn.Linear(n_hidden, 10)),
        ]))
        self.loss_fnc = stable_cross_entropy

    def forward(self, batch):
        logits = self.net(batch["images"])
        out = {"logits": logits}
        if self.training:
            out["loss"] = self.loss_fnc(logits, batch["labels"])
        else:
            out["probs"], out["pred"] = self.decode_prediction(logits)
        return out

    def decode_prediction(self, logits):
        probs = torch.softmax(logits, dim=1)
        _, pred = torch.max(probs, dim=1)
        return probs, pred
'''

_CLASSIFIER_OWN_SOFTMAX = '''
class MNISTClassifier(nn.Module):
    def __init__(self, n_hidden: int) -> None:
        nn.Module.__init__(self)
        layers = [nn.Linear(784, n_hidden), nn.BatchNorm1d(n_hidden), nn.ReLU(), nn.Linear(n_hidden, 10)]
        self.net = nn.Sequential(*layers)
        self.loss_fnc = stable_cross_entropy

    def forward(self, batch):
        logits = self.net(batch["images"])
        if not self.training:
            probs, pred = self.decode_prediction(logits)
            return dict(logits=logits, probs=probs, pred=pred)
        return dict(loss=self.loss_fnc(logits, batch["labels"]), logits=logits)

    def decode_prediction(self, logits):
        probs = softmax(logits)  # the softmax written in Part 2
        return probs, probs.argmax(-1)
'''

_DATASET_NAMEDTUPLE = '''
from collections import namedtuple

Sample = namedtuple("Sample", ["image", "label"])


class MNISTDataset(torch.utils.data.Dataset):
    """__getitem__ returns a namedtuple (image, label)."""

    def __init__(self, images, labels):
        self.images = torch.as_tensor(np.asarray(images)).reshape(len(images), 784)
        self.labels = np.asarray(labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return Sample(image=self.images[i].to(torch.float32) / 255, label=int(self.labels[i]))

    def collate_func(self, samples):
        return {"images": torch.stack([s.image for s in samples]),
                "labels": torch.tensor([s.label for s in samples], dtype=torch.int64)}
'''

_STABLE_CE_NLL_LOSS = '''
import torch.nn.functional as F


def stable_cross_entropy(logits, labels):
    """Log-probabilities by hand (Eq. 4), then F.nll_loss picks and averages them."""
    m = logits.max(dim=1, keepdim=True).values
    log_probs = logits - m - torch.log(torch.sum(torch.exp(logits - m), dim=1, keepdim=True))
    return F.nll_loss(log_probs, labels)
'''

_CLASSIFIER_NO_BIAS = '''
class MNISTClassifier(nn.Module):
    def __init__(self, n_hidden):
        super().__init__()
        # BatchNorm subtracts the mean and adds its own shift: a bias before it is redundant
        self.net = nn.Sequential(nn.Linear(784, n_hidden, bias=False), nn.BatchNorm1d(n_hidden), nn.ReLU(),
                                 nn.Linear(n_hidden, 10))
        self.loss_fnc = stable_cross_entropy

    def forward(self, batch):
        logits = self.net(batch["images"])
        if self.training:
            return {"loss": self.loss_fnc(logits, batch["labels"]), "logits": logits}
        probs, pred = self.decode_prediction(logits)
        return {"logits": logits, "probs": probs, "pred": pred}

    def decode_prediction(self, logits):
        probs = torch.softmax(logits, dim=-1)
        return probs, probs.argmax(dim=-1)
'''

_LOOP_MODEL_ZERO_GRAD = '''
def train_one_epoch(model, loader, optimizer, step_losses):
    model.train()
    total, count = 0.0, 0
    for step, batch in enumerate(loader):
        model.zero_grad()
        output = model(batch)
        output["loss"].backward()
        optimizer.step()
        value = float(output["loss"].item())
        step_losses.append(value)
        size = batch["images"].shape[0]
        total, count = total + value * size, count + size
    return total / count
'''

_LOOP_TENSOR_SUM = '''
def train_one_epoch(model, loader, optimizer, step_losses):
    model.train(True)
    sums = torch.zeros(2)
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = model(batch)["loss"]
        loss.backward()
        optimizer.step()
        step_losses.append(loss.item())
        n = batch["labels"].numel()
        sums += torch.stack([loss.detach() * n, torch.tensor(float(n))])
    return (sums[0] / sums[1]).item()
'''

ALTERNATIVES = [
    Alternative("struct-header", {"read_idx": _READ_IDX_STRUCT}, "struct.unpack for the header, "
                "a module-level type table"),
    Alternative("pathlib-dtype-table", {"read_idx": _READ_IDX_PATHLIB}, "Path.read_bytes, numpy "
                "dtype objects in a table, slicing instead of count"),
    Alternative("gzip-open-stream", {"read_idx": _READ_IDX_GZIP_OPEN}, "gzip.open and reading the "
                "header field by field"),
    Alternative("numpy-dataset", {"mnist_dataset": _DATASET_NUMPY}, "numpy arrays in the Dataset, "
                "torch.from_numpy per sample"),
    Alternative("float-tensor-dataset", {"mnist_dataset": _DATASET_FLOAT_TENSORS}, "scaled float "
                "tensors up front, private attributes, torch.cat in collate"),
    Alternative("softmax-amax", {"softmax": _SOFTMAX_AMAX}, "torch.amax and torch.exp"),
    Alternative("softmax-torch-max", {"softmax": _SOFTMAX_TORCH_MAX}, "torch.max with a computed "
                "dimension and Tensor.div"),
    Alternative("ce-gather", {"cross_entropy": _CE_GATHER}, "gather instead of fancy indexing"),
    Alternative("ce-one-hot", {"cross_entropy": _CE_ONE_HOT}, "a one-hot mask"),
    Alternative("stable-ce-gather", {"stable_cross_entropy": _STABLE_CE_GATHER}, "log-sum-exp "
                "with gather"),
    Alternative("stable-ce-loop", {"stable_cross_entropy": _STABLE_CE_LOOP}, "a Python loop over "
                "the rows"),
    Alternative("ordered-dict-sequential", {"mnist_classifier": _CLASSIFIER_ORDERED_DICT},
                "named layers in an OrderedDict, torch.max for pred"),
    Alternative("own-softmax-decode", {"mnist_classifier": _CLASSIFIER_OWN_SOFTMAX},
                "decode_prediction with the student's own softmax, nn.Module.__init__(self)"),
    Alternative("namedtuple-sample", {"mnist_dataset": _DATASET_NAMEDTUPLE},
                "__getitem__ returns a namedtuple (a tuple subclass)"),
    Alternative("stable-ce-nll-loss", {"stable_cross_entropy": _STABLE_CE_NLL_LOSS},
                "log-probabilities by hand, then F.nll_loss"),
    Alternative("linear-no-bias-before-batchnorm", {"mnist_classifier": _CLASSIFIER_NO_BIAS},
                "nn.Linear(784, H, bias=False) before BatchNorm1d"),
    Alternative("loop-model-zero-grad", {"train_one_epoch": _LOOP_MODEL_ZERO_GRAD},
                "model.zero_grad() before the forward pass, enumerate, batch size from the images"),
    Alternative("loop-tensor-sum", {"train_one_epoch": _LOOP_TENSOR_SUM},
                "the sums kept in a tensor, zero_grad(set_to_none=True), .item() at the end"),
]
