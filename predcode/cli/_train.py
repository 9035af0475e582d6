"""``predcode train pcn``: a discriminative PCN and its backprop twin on a bundled dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import (
    HelpFormatter,
    add_common,
    check_json_path,
    check_out_dir,
    positive_float,
    positive_int,
    sizes,
    text_stream,
    write_json,
)

__all__ = ["add_parser", "run_pcn"]

#: Library parameter (as named in its error messages) → the option the user typed.
OPTIONS = {
    "dataset": "--dataset", "epochs": "--epochs", "sizes": "--sizes",
    "batch_size": "--batch-size", "activation": "--activation", "T": "--T",
    "gamma": "--gamma", "lr": "--lr", "pcn_lr": "--lr", "MLP.lr": "--baseline-lr",
    "mlp_lr": "--baseline-lr", "output_precision": "--output-precision",
    "precisions": "--output-precision", "dtype": "--dtype", "backend": "--backend",
    "random_state": "--seed", "seed": "--seed",
}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``train`` and its one case, ``train pcn``."""
    from ..activations import ACTIVATIONS
    from ..backend import BACKENDS
    from ..datasets import DATASETS

    train = sub.add_parser("train", formatter_class=HelpFormatter,
                           help="train a model on a bundled dataset",
                           description="Train a model on a bundled dataset.")
    cases = train.add_subparsers(dest="model", required=True, metavar="MODEL")
    p = cases.add_parser(
        "pcn", formatter_class=HelpFormatter,
        help="discriminative PC network (with a backprop MLP baseline)",
        description="Train a discriminative PC network and its backprop MLP twin; write "
                    "metrics.json, learning_curve.png and pcn.npz to --out.")
    add_common(p, backends=BACKENDS, backend="auto", out="output folder (created)",
               json_help="write the metrics as JSON here too", out_required=True)
    p.add_argument("--dataset", choices=DATASETS, default="digits", help="bundled dataset")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="training epochs (default: 60 for digits, 30 for mnist)")
    p.add_argument("--sizes", type=sizes, default=None,
                   help="layer widths, input first (default: 64,128,128,10 for digits)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="tanh",
                   help="activation function")
    p.add_argument("--T", type=positive_int, default=40,
                   help="inference steps (accuracy rises with T; see docs/pcn.rst)")
    p.add_argument("--gamma", type=positive_float, default=0.1, help="inference step size")
    p.add_argument("--lr", type=positive_float, default=0.5, help="PCN learning rate")
    p.add_argument("--output-precision", type=positive_float, default=0.1,
                   help="precision pi_L of the output layer")
    p.add_argument("--baseline-lr", type=positive_float, default=0.05,
                   help="learning rate of the backprop baseline")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="mini-batch size (default: the dataset's)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="precision")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the backprop MLP baseline")
    p.set_defaults(handler=run_pcn, options=OPTIONS)
    return train


def run_pcn(args: argparse.Namespace) -> int:
    """Check the outputs, train, then write metrics, the learning curve and the model."""
    out: Path = args.out
    check_out_dir(out)
    check_json_path(args.json)
    import matplotlib

    matplotlib.use("Agg")
    from ..models.pc_vs_backprop import plot_learning_curves, train_pair

    result = train_pair(
        args.dataset, epochs=args.epochs, sizes=args.sizes, batch_size=args.batch_size,
        activation=args.activation, T=args.T, gamma=args.gamma, pcn_lr=args.lr,
        mlp_lr=args.baseline_lr, output_precision=args.output_precision, dtype=args.dtype,
        backend=args.backend, random_state=args.seed, baseline=not args.no_baseline,
        verbose=True,
    )
    say = text_stream(args)
    out.mkdir(parents=True, exist_ok=True)
    m = result["metrics"]
    write_json(out / "metrics.json", m)
    plot_learning_curves({args.dataset: m}, out / "learning_curve.png")
    result["models"]["pcn"].save(out / "pcn.npz")
    line = f"PCN test accuracy {100 * m['pcn']['test_accuracy']:.2f} %"
    if "mlp" in m:
        line += (f", backprop MLP {100 * m['mlp']['test_accuracy']:.2f} % "
                 f"(gap {m['accuracy_gap_points']:+.2f} points)")
    print(line, file=say)
    print(f"wrote {out / 'metrics.json'}, {out / 'learning_curve.png'}, {out / 'pcn.npz'}",
          file=say)
    if args.json is not None:
        write_json(args.json, m, say=say)
    return 0
