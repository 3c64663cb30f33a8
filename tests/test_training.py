"""fit on real MNIST (a 2000-image subset), the protocol errors, reproducibility, the sample cache."""
import math

import pytest
import torch
from torch.utils.data import DataLoader

from helpers.batching import CachedSamples
from helpers.optim import OneCycleAdamW, fused_kernel_works, one_cycle
from helpers.protocol import BatchProtocolError, ModelProtocolError
from helpers.training import History, fit, seed_everything
from student_style import MNISTClassifier, MNISTDataset, datasets


@pytest.fixture(scope="module")
def data(real_mnist_root):
    return datasets()


def train(data, epochs=3, seed=0, model_seed=0, n_hidden=32, **kwargs):
    seed_everything(model_seed)
    model = MNISTClassifier(n_hidden)
    return model, fit(model, data[0], data[1], epochs=epochs, lr=1e-2, seed=seed, progress=False, **kwargs)


def test_fit_learns_on_real_mnist_and_records_history(data):
    model, history = train(data, epochs=4, device="cpu")  # the GPU path: tests/test_cuda.py
    steps_per_epoch = math.ceil(len(data[0]) / 128)
    assert isinstance(history, History)
    assert len(history.step_loss) == 4 * steps_per_epoch == 4 * history.steps_per_epoch
    assert [r["epoch"] for r in history.epochs] == [1, 2, 3, 4]
    first, last = history.epochs[0], history.epochs[-1]
    assert last["train_loss"] < first["train_loss"]
    assert last["val_acc"] > 0.83, "a 32-unit MLP reaches ~87 % on 1000 test images after 4 epochs on 2000"
    assert 0 <= last["train_acc"] <= 1 and last["val_loss"] > 0 and last["seconds"] > 0
    assert history.wall_time_s >= sum(r["train_seconds"] for r in history.epochs)
    assert history.device == "cpu" and history.cached_samples
    assert set(history.to_dict()) >= {"step_loss", "epochs", "wall_time_s", "device"}
    assert not model.training, "validation leaves the model in eval mode"
    assert history.column("val_acc") == [r["val_acc"] for r in history.epochs]


def test_same_seed_same_history_other_seed_differs(data):
    _, one = train(data, epochs=2, seed=3, model_seed=3)
    _, two = train(data, epochs=2, seed=3, model_seed=3)
    _, other = train(data, epochs=2, seed=4, model_seed=3)
    assert one.step_loss == two.step_loss
    strip = lambda h: [{k: v for k, v in r.items() if "seconds" not in k} for r in h.epochs]  # noqa: E731
    assert strip(one) == strip(two)
    assert one.step_loss != other.step_loss, "the seed must change the shuffling"


def test_fit_accepts_a_dataloader_and_a_list_of_batches(data):
    train_ds, test_ds = data
    loader = DataLoader(train_ds, batch_size=100, shuffle=True, collate_fn=train_ds.collate_func)
    batches = [test_ds.collate_func([test_ds[i] for i in range(j, j + 250)]) for j in range(0, 1000, 250)]
    seed_everything(0)
    history = fit(MNISTClassifier(16), loader, batches, epochs=1, progress=False)
    assert len(history.step_loss) == 20
    assert history.epochs[0]["val_acc"] > 0.3 and not history.cached_samples


def test_callbacks_run_every_log_every_steps_and_after_each_epoch(data):
    calls = []
    train(data, epochs=2, log_every=5, callbacks=[lambda h: calls.append((len(h.step_loss), len(h.epochs)))])
    assert math.ceil(len(data[0]) / 128) == 16
    # (steps so far, epochs finished) at each call: every 5th step, and after each 16-step epoch
    assert calls == [(5, 0), (10, 0), (15, 0), (16, 1), (20, 1), (25, 1), (30, 1), (32, 2)]


def test_fit_restores_torch_threads(data):
    before = torch.get_num_threads()
    _, history = train(data, epochs=1, device="cpu")  # "auto" threads means 1 on the CPU only
    assert history.config["num_threads"] == 1
    assert torch.get_num_threads() == before


class CountingDataset(MNISTDataset):
    def __init__(self, *args):
        super().__init__(*args)
        self.calls = 0

    def __getitem__(self, index):
        self.calls += 1
        return super().__getitem__(index)


class AugmentedDataset(MNISTDataset):
    """Random noise on every access: caching its samples would be wrong."""

    def __getitem__(self, index):
        image, label = super().__getitem__(index)
        return (image + 0.05 * torch.rand_like(image)).clamp(0, 1), label


def test_sample_cache_computes_each_sample_once_and_skips_random_datasets(data):
    images, labels = data[0].images[:500], data[0].labels[:500]
    counting = CountingDataset(images, labels)
    history = fit(MNISTClassifier(8), counting, epochs=3, progress=False)
    probes = 6  # CachedSamples.cacheable reads 3 indices twice
    assert history.cached_samples and counting.calls == len(images) + probes

    uncached = CountingDataset(images, labels)
    fit(MNISTClassifier(8), uncached, epochs=3, progress=False, cache_samples=False)
    assert uncached.calls == 3 * len(images)

    assert not CachedSamples.cacheable(AugmentedDataset(images, labels))
    assert not fit(MNISTClassifier(8), AugmentedDataset(images, labels), epochs=2, progress=False).cached_samples
    assert not fit(MNISTClassifier(8), counting, epochs=1, progress=False).cached_samples, "one epoch: nothing to reuse"


# --- the model protocol: each way of breaking it gets an error naming what was expected and received ---

class Broken(MNISTClassifier):
    def __init__(self, how):
        super().__init__(8)
        self.how = how

    def forward(self, batch):
        out = super().forward(batch)
        if not self.training:
            if self.how == "eval_no_pred":
                del out["pred"]
            if self.how == "eval_nine_classes":
                out["probs"] = out["probs"][:, :9]
            if self.how == "eval_probs_shape":
                out["probs"] = out["probs"][:, :1].reshape(-1)
            return out
        if self.how == "tuple":
            return out["loss"], out["logits"]
        if self.how == "no_loss":
            return {"logits": out["logits"]}
        if self.how == "per_sample_loss":
            return {"loss": torch.nn.functional.cross_entropy(out["logits"], batch["labels"], reduction="none")}
        if self.how == "nan_loss":
            return {"loss": out["loss"] * float("nan"), "logits": out["logits"]}
        if self.how == "float_loss":
            return {"loss": out["loss"].item()}
        if self.how == "detached_loss":
            return {"loss": out["loss"].detach()}
        if self.how == "logits_shape":
            return {"loss": out["loss"], "logits": out["logits"][:3]}
        return out


@pytest.mark.parametrize(
    "how, message",
    [
        ("tuple", r'must return a dict with "loss".*returned a tuple'),
        ("no_loss", r"keys \['logits'\], with no \"loss\""),
        ("per_sample_loss", r"shape \(128,\).*\.mean\(\)"),
        ("nan_loss", r"loss became nan at step 1.*log\(0\)"),
        ("float_loss", r"is a float.*Return the tensor"),
        ("detached_loss", r"does not require a gradient"),
        ("logits_shape", r'output\["logits"\] must be a tensor of shape \(N, 10\) with N = 128.*shape \(3, 10\)'),
        ("eval_no_pred", r"in eval mode.*\"probs\".*\"pred\".*missing \['pred'\]"),
        ("eval_probs_shape", r'output\["probs"\] must be a tensor of shape \(N, 10\) with N = 512.*shape \(512,\)'),
        ("eval_nine_classes", r'output\["probs"\] must be a tensor of shape \(N, 10\).*shape \(512, 9\)'),
    ],
)
def test_protocol_errors_say_what_is_expected_and_what_was_received(data, how, message):
    with pytest.raises(ModelProtocolError, match=message) as error:
        fit(Broken(how), data[0], data[1], epochs=1, progress=False)
    assert isinstance(error.value, TypeError) and isinstance(error.value, ValueError)


def test_a_model_without_parameters_is_refused(data):
    class Empty(torch.nn.Module):
        def forward(self, batch):
            return {"loss": torch.tensor(1.0, requires_grad=True)}

    with pytest.raises(ModelProtocolError, match="no trainable parameters"):
        fit(Empty(), data[0], epochs=1, progress=False)


def test_batch_protocol_errors(data):
    images, labels = data[0].images[:300], data[0].labels[:300]

    class TupleCollate(MNISTDataset):
        def collate_func(self, samples):
            batch = super().collate_func(samples)
            return batch["images"], batch["labels"]

    class IntLabels(MNISTDataset):
        def collate_func(self, samples):
            return {**super().collate_func(samples), "labels": torch.zeros(len(samples), dtype=torch.int32)}

    class NoCollate(torch.utils.data.Dataset):
        def __len__(self):
            return 300

        def __getitem__(self, index):
            return torch.zeros(784), 0

    with pytest.raises(BatchProtocolError, match=r"a batch must be a dict .*got a tuple"):
        fit(MNISTClassifier(8), TupleCollate(images, labels), epochs=1, progress=False)
    with pytest.raises(BatchProtocolError, match=r'batch\["labels"\] must be an int64 .*torch.int32'):
        fit(MNISTClassifier(8), IntLabels(images, labels), epochs=1, progress=False)
    with pytest.raises(BatchProtocolError, match="has no collate_func"):
        fit(MNISTClassifier(8), NoCollate(), epochs=1, progress=False)


@pytest.mark.parametrize("kwargs", [dict(epochs=0), dict(batch_size=-1), dict(lr=0.0)])
def test_bad_arguments_are_refused(data, kwargs):
    with pytest.raises(ValueError):
        fit(MNISTClassifier(8), data[0], **{"progress": False, **kwargs})


# --- the optimiser: the same numbers as torch.optim.AdamW + OneCycleLR, step for step ---

def torch_optim_run(model, batch, steps, fused):
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, fused=fused)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    seen = []
    for step in range(steps):
        seen.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["betas"][0]))
        optimizer.zero_grad()
        model(batch)["loss"].backward()
        optimizer.step()
        if step < steps - 1:
            schedule.step()
    return seen


def assert_matches_torch_optim(data, use_torch_optim=False, expect_fused=True):
    """37 steps of OneCycleAdamW give torch.optim's schedule and weights, bit for bit."""
    steps = 37
    batch = data[0].collate_func([data[0][i] for i in range(64)])
    seed_everything(0)
    expected_model = MNISTClassifier(16)
    expected_schedule = torch_optim_run(expected_model, batch, steps, fused=expect_fused)
    seed_everything(0)
    model = MNISTClassifier(16)
    optimizer = OneCycleAdamW(model.parameters(), max_lr=3e-3, total_steps=steps, use_torch_optim=use_torch_optim)
    assert optimizer.fused is expect_fused
    schedule = []
    for _ in range(steps):
        optimizer.zero_grad()
        model(batch)["loss"].backward()
        optimizer.step()
        schedule.append((optimizer.lr, optimizer.beta1))
    assert schedule == expected_schedule == [one_cycle(k, steps, 3e-3) for k in range(steps)]
    for ours, theirs in zip(model.parameters(), expected_model.parameters()):
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize("use_torch_optim", [False, True])
def test_one_cycle_adamw_matches_torch_optim_exactly(data, use_torch_optim):
    assert_matches_torch_optim(data, use_torch_optim, expect_fused=not use_torch_optim)


# --- the private kernel: it must work on the installed torch; when a torch changes it, torch.optim takes over ---

@pytest.fixture
def fresh_kernel_check():
    fused_kernel_works.cache_clear()
    yield
    fused_kernel_works.cache_clear()


def test_the_private_kernel_passes_its_check_on_the_installed_torch(fresh_kernel_check):
    assert fused_kernel_works(torch.device("cpu")), (
        f"torch {torch.__version__} changed torch._fused_adamw_, so fit now uses torch.optim (same results, slower): "
        "fix helpers/optim.py, or rerun benchmarks/bench_optimizer.py and drop it if it no longer pays"
    )
    assert OneCycleAdamW([torch.nn.Parameter(torch.zeros(3))], max_lr=1e-3, total_steps=10).fused


REAL_KERNEL = torch._fused_adamw_


def renamed_arguments(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *, learning_rate, **kwargs):
    raise AssertionError("never called: the call passes lr=, which this signature refuses")


def forgets_weight_decay(*args, **kwargs):
    return REAL_KERNEL(*args, **{**kwargs, "weight_decay": 0.0})


@pytest.mark.parametrize("kernel", [None, renamed_arguments, forgets_weight_decay],
                         ids=["removed", "renamed-arguments", "other-maths"])
def test_a_changed_private_kernel_falls_back_to_torch_optim(data, monkeypatch, fresh_kernel_check, kernel):
    if kernel is None:
        monkeypatch.delattr(torch, "_fused_adamw_")
    else:
        monkeypatch.setattr(torch, "_fused_adamw_", kernel)
    assert not fused_kernel_works(torch.device("cpu"))
    assert_matches_torch_optim(data, expect_fused=False)
    _, history = train(data, epochs=1)
    assert history.config["fused_adamw"] is False and history.epochs[0]["val_acc"] > 0.5


def test_one_cycle_adamw_zero_grad_takes_torch_optims_argument():
    """A loop written for torch.optim (``zero_grad(set_to_none=...)``) runs unchanged."""
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = OneCycleAdamW([weight], max_lr=1e-3, total_steps=2)
    (weight * 2).sum().backward()
    optimizer.zero_grad(set_to_none=False)
    assert weight.grad is not None and weight.grad.tolist() == [0.0, 0.0, 0.0]
    (weight * 2).sum().backward()
    assert weight.grad.tolist() == [2.0, 2.0, 2.0]
    optimizer.zero_grad()
    assert weight.grad is None
