"""Train the lab's reference MLP on MNIST from the command line.

    python -m helpers.train 128                  # N_HIDDEN = 128, the course's default recipe
    python -m helpers.train 512 --epochs 5 --plot history.png
    python -m helpers.train 128 --dry-run        # one quick pass on a small subset (CI)

Prints one line per epoch, then the test accuracy and the wall time. The model is the private
reference (Linear -> BatchNorm1d -> ReLU -> Linear, see ``helpers._reference_model``); the
training loop is the same ``helpers.training.fit`` that the notebooks call.
"""
from __future__ import annotations

import time

STARTED = time.perf_counter()  # before the heavy imports: the wall time printed includes them

import argparse  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from ._reference_model import ReferenceMLP, TensorBatches, images_to_inputs  # noqa: E402
from .data import DataError, load_mnist  # noqa: E402
from .training import History, fit  # noqa: E402

# --dry-run: enough images for every class and a few steps, little enough to take a second.
DRY_RUN_TRAIN, DRY_RUN_TEST = 2048, 1024


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.train",
        description="Train the reference MLP (784 -> N_HIDDEN -> 10, BatchNorm, ReLU) on MNIST and report "
        "the test accuracy.",
    )
    parser.add_argument("n_hidden", type=int, metavar="N_HIDDEN", help="hidden units, e.g. 128")
    parser.add_argument("--epochs", type=int, default=10, metavar="N", help="passes over the training set (default: 10)")
    parser.add_argument("--batch-size", type=int, default=128, metavar="N", help="images per step (default: 128)")
    parser.add_argument("--lr", type=float, default=3e-3, metavar="LR",
                        help="peak learning rate of AdamW's one-cycle schedule (default: 3e-3)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    parser.add_argument("--device", default="auto", help='"auto" (CUDA when present, else CPU), "cpu", "cuda", ...')
    parser.add_argument("--threads", default="auto", metavar="N",
                        help='PyTorch CPU threads during training (default: "auto" = 1, fastest for this model)')
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="folder with the four MNIST .gz files (default: $MNIST_ROOT, else data/mnist)")
    parser.add_argument("--plot", default=None, metavar="PATH", help="save the loss/accuracy curves to this image file")
    parser.add_argument("--dry-run", action="store_true",
                        help=f"one epoch on {DRY_RUN_TRAIN} training and {DRY_RUN_TEST} test images, to check that it runs")
    return parser


def epoch_line(record: dict, epochs: int) -> str:
    line = (f"epoch {record['epoch']:>2}/{epochs}  train loss {record['train_loss']:.4f} acc "
            f"{100 * record['train_acc']:.2f}%")
    if record["val_acc"] is not None:
        line += f"  test loss {record['val_loss']:.4f} acc {100 * record['val_acc']:.2f}%"
    return line + f"  {record['seconds']:.2f} s"


class EpochPrinter:
    """A fit callback that prints each epoch's line once, as soon as the epoch ends."""

    def __init__(self, epochs: int):
        self.epochs, self.printed = epochs, 0

    def __call__(self, history: History) -> None:
        for record in history.epochs[self.printed:]:
            tqdm.write(epoch_line(record, self.epochs))
        self.printed = len(history.epochs)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.n_hidden < 1:
        parser.error(f"N_HIDDEN must be a positive number of hidden units, got {args.n_hidden}")
    threads = args.threads if args.threads == "auto" else int(args.threads)
    epochs = 1 if args.dry_run else args.epochs

    try:
        train_images, train_labels = load_mnist("train", root=args.data_dir)
        test_images, test_labels = load_mnist("test", root=args.data_dir)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        train_images, train_labels = train_images[:DRY_RUN_TRAIN], train_labels[:DRY_RUN_TRAIN]
        test_images, test_labels = test_images[:DRY_RUN_TEST], test_labels[:DRY_RUN_TEST]
    train = TensorBatches(images_to_inputs(train_images), torch.from_numpy(train_labels), args.batch_size,
                          shuffle=True, seed=args.seed)
    test = TensorBatches(images_to_inputs(test_images), torch.from_numpy(test_labels), batch_size=1000)

    torch.manual_seed(args.seed)  # the initial weights
    model = ReferenceMLP(args.n_hidden)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"MNIST: {len(train_labels)} training, {len(test_labels)} test images"
          f"{' (dry run)' if args.dry_run else ''}; reference MLP 784-{args.n_hidden}-10, {n_params:,} parameters")

    history = fit(
        model, train, test, epochs=epochs, lr=args.lr, seed=args.seed, device=args.device,
        num_threads=threads, progress=sys.stderr.isatty(), callbacks=[EpochPrinter(epochs)],
    )
    final = history.epochs[-1]
    print(f"device {history.device}, {history.config['num_threads']} thread(s), training {history.wall_time_s:.2f} s")
    print(f"test accuracy: {100 * final['val_acc']:.2f}% "
          f"({round(final['val_acc'] * len(test_labels))}/{len(test_labels)})")
    if args.plot:
        from .plots import plot_history  # matplotlib only when asked: it costs half a second to import

        plot_history(history).savefig(args.plot, dpi=100, bbox_inches="tight")
        print(f"curves saved to {args.plot}")
    print(f"wall time: {time.perf_counter() - STARTED:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
