"""The ``predcode`` command line: a thin layer over the library.

::

    predcode info
    predcode train pcn --dataset digits --backend numba --epochs 60 --out results/pcn
    predcode bench pcn --sizes 784,300,300,10 --batch 64 --steps 20 --activation tanh \\
        --backend numba --json out.json
    predcode reproduce whittington-bogacz-2017 --out results/wb2017

Bad arguments print a one-line error naming the option and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._version import __version__
from .exceptions import PredcodeError

__all__ = ["main", "build_parser"]


def _int_list(example: str, what: str = "positive integers", min_len: int = 1) -> Any:
    """argparse type: comma-separated positive integers, at least ``min_len`` of them."""

    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {what} such as {example}, got {text!r}"
            ) from None
        if len(values) < min_len or min(values) < 1:
            least = f"at least {min_len} " if min_len > 1 else ""
            raise argparse.ArgumentTypeError(
                f"expected {least}{what} such as {example}, got {text!r}"
            )
        return values

    return parse


_sizes = _int_list("784,300,300,10", "positive layer widths", min_len=2)


def _positive(kind: type) -> Any:
    """argparse type: a positive (finite) ``kind`` (int or float)."""
    word = "integer" if kind is int else "finite number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {word}, got {text!r}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"expected a positive {word}, got {text!r}")
        return value

    return parse


_positive_int, _positive_float = _positive(int), _positive(float)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and tests)."""
    from .activations import ACTIVATIONS
    from .backend import BACKENDS
    from .datasets import DATASETS
    from .reproduce import REPRODUCTIONS

    p = argparse.ArgumentParser(prog="predcode", description=(
        "Predictive-coding models on numpy, numba and CuPy: train, benchmark, reproduce."))
    p.add_argument("--version", action="version", version=f"predcode {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser("info", help="versions, working backends (and why others fail), "
                                       "CPU, BLAS, GPU")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")

    train = sub.add_parser("train", help="train a model on a bundled dataset")
    train.add_argument("model", choices=["pcn"], help="model family")
    train.add_argument("--dataset", choices=DATASETS, default="digits")
    train.add_argument("--backend", choices=BACKENDS, default="auto")
    train.add_argument("--epochs", type=_positive_int, default=None,
                       help="default: 60 (digits), 30 (mnist)")
    train.add_argument("--out", type=Path, required=True, help="output folder")
    train.add_argument("--sizes", type=_sizes, default=None,
                       help="layer widths, input first (default 64,128,128,10 for digits)")
    train.add_argument("--activation", choices=ACTIVATIONS, default="tanh")
    train.add_argument("--T", type=_positive_int, default=40,
                       help="inference steps (accuracy rises with T; see docs/pcn.rst)")
    train.add_argument("--gamma", type=_positive_float, default=0.1,
                       help="inference step size")
    train.add_argument("--lr", type=_positive_float, default=0.5, help="PCN learning rate")
    train.add_argument("--output-precision", type=_positive_float, default=0.1,
                       help="precision pi_L of the output layer")
    train.add_argument("--baseline-lr", type=_positive_float, default=0.05,
                       help="learning rate of the backprop baseline")
    train.add_argument("--batch-size", type=_positive_int, default=None)
    train.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-baseline", action="store_true",
                       help="skip the backprop MLP baseline")

    bench = sub.add_parser("bench", help="time training steps against the GEMM roofline")
    bench.add_argument("case", choices=["pcn", "dem", "aif", "jepa"],
                       help="benchmark case: pcn (training steps), dem (DEM iterations against "
                            "embedding order and state size) or aif (active-inference "
                            "agent-steps/s against states and policies) or jepa (JEPA and "
                            "world-model training steps, latent vs pixel CEM decisions)")
    bench.add_argument("--sizes", type=_sizes, default=(784, 300, 300, 10))
    bench.add_argument("--batch", type=_positive_int, default=64)
    bench.add_argument("--steps", type=_positive_int, default=20, help="inference steps T")
    bench.add_argument("--activation", choices=ACTIVATIONS, default="tanh")
    bench.add_argument("--backend", choices=BACKENDS, default="numba")
    bench.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    bench.add_argument("--threads", type=_positive_int, default=1,
                       help="BLAS threads (default 1: two-thread BLAS collapses on a busy "
                            "2-core machine)")
    bench.add_argument("--repeats", type=_positive_int, default=30)
    bench.add_argument("--min-time", type=_positive_float, default=2.0,
                       help="seconds of timing per measurement, at least")
    bench.add_argument("--json", type=Path, default=None, help="write results as JSON here")
    bench.add_argument("--orders", type=_int_list("2,4,6,8"), default=(2, 4, 6, 8),
                       help="dem: embedding orders to time (n_x = 2)")
    bench.add_argument("--state-sizes", type=_int_list("2,4,8,16"), default=(2, 4, 8, 16),
                       help="dem: hidden-state counts to time (n = 6)")
    bench.add_argument("--bins", type=_positive_int, default=32, help="dem: time bins N")
    bench.add_argument("--iters", type=_positive_int, default=4, help="dem: DEM iterations")
    bench.add_argument("--states", type=_int_list("4,16,64"), default=(4, 16, 64),
                       help="aif: numbers of hidden states, e.g. 4,16,64")
    bench.add_argument("--policies", type=_int_list("16,64,256"), default=(16, 64, 256),
                       help="aif: numbers of policies, e.g. 16,64,256")
    bench.add_argument("--agents", type=_positive_int, default=64,
                       help="aif: agents run at once (batch)")

    rep = sub.add_parser("reproduce", help="reproduce a classic paper's numbers and figures")
    rep.add_argument("paper", choices=sorted(REPRODUCTIONS))
    rep.add_argument("--out", type=Path, required=True, help="output folder")
    rep.add_argument("--backend", choices=BACKENDS, default="auto")
    rep.add_argument("--quick", action="store_true",
                     help="smoke run: few epochs on a subset (not the paper's numbers)")
    return p


def _cmd_info(args: argparse.Namespace) -> int:
    from .machine import machine_info

    info = machine_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"predcode {__version__}  (python {info['versions']['python']})")
    print(f"CPU      {info['cpu']}  ({info['usable_cores']} usable of "
          f"{info['logical_cores']} logical cores)")
    for b in info["blas"]:
        print(f"BLAS     {b.get('internal_api', '?')} {b.get('version', '')} "
              f"[{b.get('architecture', '')}] threads={b.get('num_threads', '?')}")
    print(f"GPU      {info['gpu'] or 'none usable (see cupy below)'}")
    print("backends")
    for name, st in info["backends"].items():
        mark = "ok " if st["works"] else "no "
        print(f"  {mark} {name:6s} {st['detail']}")
    print("versions " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from .models.pc_vs_backprop import plot_learning_curves, train_pair

    result = train_pair(
        args.dataset, epochs=args.epochs, sizes=args.sizes, batch_size=args.batch_size,
        activation=args.activation, T=args.T, gamma=args.gamma, pcn_lr=args.lr,
        mlp_lr=args.baseline_lr, output_precision=args.output_precision, dtype=args.dtype,
        backend=args.backend, random_state=args.seed, baseline=not args.no_baseline,
        verbose=True,
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    m = result["metrics"]
    (out / "metrics.json").write_text(json.dumps(m, indent=2))
    plot_learning_curves({args.dataset: m}, out / "learning_curve.png")
    result["models"]["pcn"].save(out / "pcn.npz")
    line = f"PCN test accuracy {100 * m['pcn']['test_accuracy']:.2f} %"
    if "mlp" in m:
        line += (f", backprop MLP {100 * m['mlp']['test_accuracy']:.2f} % "
                 f"(gap {m['accuracy_gap_points']:+.2f} points)")
    print(line)
    print(f"wrote {out / 'metrics.json'}, {out / 'learning_curve.png'}, {out / 'pcn.npz'}")
    return 0


def _write_bench_json(path: Path | None, result: dict[str, Any]) -> int:
    """Write a bench result to ``path`` (if given) and return the exit status 0."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
        print(f"wrote {path}")
    return 0


def _cmd_bench_dem(args: argparse.Namespace) -> int:
    from .bench.dem import bench_dem

    r = bench_dem(orders=args.orders, state_sizes=args.state_sizes, N=args.bins,
                  n_iter=args.iters, backend=args.backend, repeats=min(args.repeats, 5))
    c = r["config"]
    print(f"dem: N={c['N']} bins, {c['n_iter']} iterations, backend={c['backend']}")
    for row in r["by_order"] + r["by_state_size"]:
        print(f"  n={row['n']} n_x={row['n_x']} (n_u={row['n_u']}): DEM "
              f"{1e3 * row['dem']['median_s']:.1f} ms, filter "
              f"{1e3 * row['filter']['median_s']:.1f} ms")
    return _write_bench_json(args.json, r)


def _cmd_bench_aif(args: argparse.Namespace) -> int:
    from .bench import bench_aif

    r = bench_aif(states=args.states, policies=args.policies, agents=args.agents,
                  backend=args.backend, dtype="float64" if args.dtype == "float64" else "float32",
                  repeats=min(args.repeats, 5), min_time=min(args.min_time, 1.0))
    c = r["config"]
    print(f"aif: {c['agents']} agents, one trial (T = 3), backend={c['backend']} {c['dtype']}")
    print("  states  policies  ms/trial  agent-steps/s")
    for k in r["cases"]:
        print(f"  {k['states']:6d}  {k['policies']:8d}  {1e3 * k['median_s']:8.2f}  "
              f"{k['agent_steps_per_s']:13.0f}")
    return _write_bench_json(args.json, r)


def _cmd_bench_jepa(args: argparse.Namespace) -> int:
    from .bench import bench_jepa

    r = bench_jepa(batch=args.batch, backend=args.backend, repeats=min(args.repeats, 5),
                   min_time=min(args.min_time, 1.0))
    print(f"jepa: batch {r['config']['batch']}, backend={r['config']['backend']}")
    for name, c in r["cases"].items():
        print(f"  {name:22s} {1e3 * c['median_s']:9.2f} ms median (n={c['n']})")
    print(f"  latent planning is x{r['planning_speedup_latent_vs_pixel']:.1f} faster per "
          "decision than pixel planning")
    return _write_bench_json(args.json, r)


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.case == "aif":
        return _cmd_bench_aif(args)
    if args.case == "jepa":
        return _cmd_bench_jepa(args)
    from .bench import bench_pcn

    if args.case == "dem":
        return _cmd_bench_dem(args)

    r = bench_pcn(sizes=args.sizes, batch=args.batch, steps=args.steps,
                  activation=args.activation, backend=args.backend, dtype=args.dtype,
                  threads=args.threads, repeats=args.repeats, min_time=args.min_time)
    c = r["config"]
    print(f"pcn {c['sizes']} batch {c['batch']} T={c['steps']} {c['activation']} "
          f"{c['dtype']} backend={c['backend']} BLAS threads={c['threads']}")
    print(f"  step      {1e3 * r['step']['median_s']:.3f} ms median "
          f"(IQR {1e3 * r['step']['iqr_s']:.3f} ms, n={r['step']['n']})  "
          f"= {r['steps_per_s']:.1f} steps/s")
    print(f"  GEMMs     {1e3 * r['gemm']['median_s']:.3f} ms median for the same matrix "
          f"products alone ({r['gemm_gflops']:.1f} GFLOP/s)")
    print(f"  achieved  {r['achieved_gflops']:.1f} GFLOP/s = "
          f"{100 * r['roofline_fraction']:.1f} % of the same-run GEMM roofline "
          f"({100 * r['fraction_of_square_peak']:.1f} % of the square-GEMM peak "
          f"{r['square_gemm_peak_gflops']:.1f} GFLOP/s)")
    return _write_bench_json(args.json, r)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import get_reproduction

    report = get_reproduction(args.paper)(args.out, quick=args.quick, backend=args.backend)
    for c in report["claims"]:
        print(f"[{'ok' if c['holds'] else 'FAIL'}] {c['claim']}: {c['measured']}")
    for s in report.get("skipped", []):
        print(f"[skipped] {s}")
    print(f"wrote {args.out}/report.md, report.json and figures "
          f"({report['wall_time_s']:.1f} s)")
    return 0 if all(c["holds"] for c in report["claims"]) or args.quick else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``predcode`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers: dict[str, Any] = {"info": _cmd_info, "train": _cmd_train, "bench": _cmd_bench,
                                "reproduce": _cmd_reproduce}
    try:
        return handlers[args.command](args)
    except PredcodeError as exc:
        print(f"predcode {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
