"""``predcode bench pcn|dem|aif|jepa|helmholtz|spm``: timings, each case with its own options."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import (
    HelpFormatter,
    add_common,
    check_json_path,
    check_out_dir,
    int_list,
    positive_float,
    positive_int,
    sizes,
    text_stream,
    write_json,
)

__all__ = ["add_parser"]

#: Library parameter (as named in its error messages) → the option the user typed.
OPTIONS = {
    "sizes": "--sizes", "batch": "--batch", "steps": "--steps", "activation": "--activation",
    "backend": "--backend", "dtype": "--dtype", "threads": "--threads", "jobs": "--jobs",
    "repeats": "--repeats", "min_time": "--min-time", "orders": "--orders",
    "state_sizes": "--state-sizes", "N": "--bins", "n_iter": "--iters",
    "states": "--states", "policies": "--policies", "agents": "--agents", "seed": "--seed",
    "scheme": "--scheme",
    "cases": "--cases", "fixtures": "--fixtures", "patterns": "--patterns",
    "reference_patterns": "--reference-patterns",
    "DEM.Y": "--bins",  # too few time bins for the embedding order
}

_FLOATS = ["float32", "float64"]


def _timing(p: argparse.ArgumentParser, repeats: int, min_time: float | None) -> None:
    p.add_argument("--repeats", type=positive_int, default=repeats,
                   help="timed runs per measurement, at least")
    if min_time is not None:
        p.add_argument("--min-time", type=positive_float, default=min_time,
                       help="seconds of timing per measurement, at least")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``bench`` and one sub-parser per case."""
    from ..activations import ACTIVATIONS
    from ..backend import BACKENDS

    bench = sub.add_parser("bench", formatter_class=HelpFormatter,
                           help="time a case: pcn (vs the GEMM roofline), dem, aif, jepa, "
                                "helmholtz, spm",
                           description="Time one benchmark case; see "
                                       "'predcode bench CASE --help' for its options.")
    cases = bench.add_subparsers(dest="case", required=True, metavar="CASE")
    common = dict(backend="numba", out="also write bench.json into this folder",
                  json_help="write the result as JSON here")

    p = cases.add_parser("pcn", formatter_class=HelpFormatter,
                         help="PCN training steps against the same run's GEMM roofline",
                         description="Time PCN training steps (feed-forward, T inference "
                                     "steps, one weight update) and the same run's GEMMs.")
    add_common(p, backends=BACKENDS, **common)
    p.add_argument("--sizes", type=sizes, default=(784, 300, 300, 10),
                   help="layer widths, input first")
    p.add_argument("--batch", type=positive_int, default=64, help="mini-batch size")
    p.add_argument("--steps", type=positive_int, default=20, help="inference steps T")
    p.add_argument("--activation", choices=ACTIVATIONS, default="tanh",
                   help="activation function")
    p.add_argument("--dtype", choices=_FLOATS, default="float32", help="precision")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="BLAS threads (1: two-thread BLAS collapses on a busy 2-core machine)")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="threads settling the batch's row blocks (PCN n_jobs), each with "
                        "--threads BLAS threads")
    _timing(p, 30, 2.0)
    p.set_defaults(handler=_pcn, options=OPTIONS)

    p = cases.add_parser("dem", formatter_class=HelpFormatter,
                         help="DEM iterations against embedding order and state size",
                         description="Time DEM iterations and generalized filtering on "
                                     "linear convolution models (DEM runs on the host).")
    add_common(p, backends=("auto", "numpy", "numba"), **common)
    p.add_argument("--orders", type=int_list("2,4,6,8"), default=(2, 4, 6, 8),
                   help="embedding orders to time (n_x = 2)")
    p.add_argument("--state-sizes", type=int_list("2,4,8,16"), default=(2, 4, 8, 16),
                   help="hidden-state counts to time (n = 6)")
    p.add_argument("--bins", type=positive_int, default=32, help="time bins N")
    p.add_argument("--iters", type=positive_int, default=4, help="DEM iterations")
    _timing(p, 5, None)
    p.set_defaults(handler=_dem, options=OPTIONS)

    p = cases.add_parser("aif", formatter_class=HelpFormatter,
                         help="active-inference agent-steps/s against states and policies",
                         description="Time many active-inference agents for one T-maze-"
                                     "length trial (T = 3) on random models.")
    add_common(p, backends=BACKENDS, **common)
    p.add_argument("--states", type=int_list("4,16,64"), default=(4, 16, 64),
                   help="numbers of hidden states")
    p.add_argument("--policies", type=int_list("16,64,256"), default=(16, 64, 256),
                   help="numbers of policies")
    p.add_argument("--agents", type=positive_int, default=64,
                   help="agents run at once (batch)")
    p.add_argument("--scheme", choices=("predcode", "pymdp"), default="predcode",
                   help="run_trials scheme: predcode's, or pymdp 1.0's semantics (one fused "
                        "kernel call per step)")
    p.add_argument("--dtype", choices=_FLOATS, default="float32", help="precision")
    _timing(p, 5, 1.0)
    p.set_defaults(handler=_aif, options=OPTIONS)

    p = cases.add_parser("jepa", formatter_class=HelpFormatter,
                         help="JEPA and world-model training steps, latent vs pixel CEM",
                         description="Time I-JEPA and world-model training steps and one CEM "
                                     "planning decision through the latent and the pixel "
                                     "world model.")
    add_common(p, backends=BACKENDS, **common)
    p.add_argument("--batch", type=positive_int, default=64, help="mini-batch size")
    _timing(p, 5, 1.0)
    p.set_defaults(handler=_jepa, options=OPTIONS)

    p = cases.add_parser("helmholtz", formatter_class=HelpFormatter,
                         help="online wake-sleep patterns/s against a plain numpy loop",
                         description="Time online wake-sleep (16-8-1 machine, 4x4 bars) on "
                                     "a backend and as a plain numpy loop; exit status 1 "
                                     "when the ratio is under the 20x target.")
    add_common(p, backends=BACKENDS, **common)
    p.add_argument("--patterns", type=positive_int, default=20_000,
                   help="patterns per timed pass on the backend")
    p.add_argument("--reference-patterns", type=positive_int, default=1_000,
                   help="patterns per timed pass of the numpy baselines")
    _timing(p, 3, 0.5)
    p.set_defaults(handler=_helmholtz, options=OPTIONS)

    p = cases.add_parser("spm", formatter_class=HelpFormatter,
                         help="predcode beside SPM12 (Octave) on SPM's own demos",
                         description="Time predcode on each SPM parity fixture (SPM's own "
                                     "demo, SPM's own data) and set it beside the wall time "
                                     "SPM12 took under GNU Octave, recorded in the fixture.")
    add_common(p, backends=("numpy",), with_seed=False,
               **{**common, "backend": "numpy"})
    p.add_argument("--cases", type=name_list, default=None,
                   help="comma-separated fixture cases (default: all)")
    p.add_argument("--fixtures", type=Path, default=None, metavar="DIR",
                   help="the tests/fixtures/spm folder of a predcode checkout "
                        "(default: the checkout predcode runs from)")
    _timing(p, 3, None)
    p.set_defaults(handler=_spm, options=OPTIONS)
    return bench


def _check(args: argparse.Namespace) -> None:
    check_out_dir(args.out)
    check_json_path(args.json)


def _write(args: argparse.Namespace, result: dict[str, Any]) -> int:
    """Write the result where ``--json`` and ``--out`` say; the exit status 0."""
    say = text_stream(args)
    if args.out is not None:
        write_json(args.out / "bench.json", result, say=say)
    if args.json is not None:
        write_json(args.json, result, say=say)
    return 0


def _pcn(args: argparse.Namespace) -> int:
    _check(args)
    from ..bench import bench_pcn

    r = bench_pcn(sizes=args.sizes, batch=args.batch, steps=args.steps,
                  activation=args.activation, backend=args.backend, dtype=args.dtype,
                  threads=args.threads, repeats=args.repeats, min_time=args.min_time,
                  seed=args.seed, jobs=args.jobs)
    c, say = r["config"], text_stream(args)
    print(f"pcn {c['sizes']} batch {c['batch']} T={c['steps']} {c['activation']} "
          f"{c['dtype']} backend={c['backend']} BLAS threads={c['threads']} "
          f"settling threads={c['jobs']}", file=say)
    print(f"  BLAS kernel: {r['machine']['blas_kernel']['summary']}", file=say)
    print(f"  step      {1e3 * r['step']['median_s']:.3f} ms median "
          f"(IQR {1e3 * r['step']['iqr_s']:.3f} ms, n={r['step']['n']})  "
          f"= {r['steps_per_s']:.1f} steps/s", file=say)
    print(f"  GEMMs     {1e3 * r['gemm']['median_s']:.3f} ms median for the same matrix "
          f"products alone ({r['gemm_gflops']:.1f} GFLOP/s)", file=say)
    print(f"  achieved  {r['achieved_gflops']:.1f} GFLOP/s = "
          f"{100 * r['roofline_fraction']:.1f} % of the same-run GEMM roofline "
          f"({100 * r['fraction_of_square_peak']:.1f} % of the square-GEMM peak "
          f"{r['square_gemm_peak_gflops']:.1f} GFLOP/s)", file=say)
    return _write(args, r)


def _dem(args: argparse.Namespace) -> int:
    _check(args)
    from ..bench.dem import bench_dem

    r = bench_dem(orders=args.orders, state_sizes=args.state_sizes, N=args.bins,
                  n_iter=args.iters, backend=args.backend, repeats=args.repeats,
                  seed=args.seed)
    c, say = r["config"], text_stream(args)
    print(f"dem: N={c['N']} bins, {c['n_iter']} iterations, backend={c['backend']}", file=say)
    for row in r["by_order"] + r["by_state_size"]:
        print(f"  n={row['n']} n_x={row['n_x']} (n_u={row['n_u']}): DEM "
              f"{1e3 * row['dem']['median_s']:.1f} ms, filter "
              f"{1e3 * row['filter']['median_s']:.1f} ms", file=say)
    return _write(args, r)


def _aif(args: argparse.Namespace) -> int:
    _check(args)
    from ..bench import bench_aif

    r = bench_aif(states=args.states, policies=args.policies, agents=args.agents,
                  backend=args.backend, dtype=args.dtype, repeats=args.repeats,
                  min_time=args.min_time, seed=args.seed, scheme=args.scheme)
    c, say = r["config"], text_stream(args)
    print(f"aif: {c['agents']} agents, one trial (T = 3), scheme={c['scheme']}, "
          f"backend={c['backend']} {c['dtype']}", file=say)
    print("  states  policies  ms/trial  agent-steps/s", file=say)
    for k in r["cases"]:
        print(f"  {k['states']:6d}  {k['policies']:8d}  {1e3 * k['median_s']:8.2f}  "
              f"{k['agent_steps_per_s']:13.0f}", file=say)
    return _write(args, r)


def _jepa(args: argparse.Namespace) -> int:
    _check(args)
    from ..bench import bench_jepa

    r = bench_jepa(batch=args.batch, backend=args.backend, repeats=args.repeats,
                   min_time=args.min_time, seed=args.seed)
    say = text_stream(args)
    print(f"jepa: batch {r['config']['batch']}, backend={r['config']['backend']}", file=say)
    for name, c in r["cases"].items():
        print(f"  {name:22s} {1e3 * c['median_s']:9.2f} ms median (n={c['n']})", file=say)
    print(f"  latent planning is x{r['planning_speedup_latent_vs_pixel']:.1f} faster per "
          "decision than pixel planning", file=say)
    return _write(args, r)


def _helmholtz(args: argparse.Namespace) -> int:
    _check(args)
    from ..bench import bench_helmholtz

    r = bench_helmholtz(patterns=args.patterns, reference_patterns=args.reference_patterns,
                        backend=args.backend, repeats=args.repeats, min_time=args.min_time,
                        seed=args.seed)
    say = text_stream(args)
    print("helmholtz: online wake-sleep, 16-8-1 on 4x4 bars", file=say)
    for name, c in r["cases"].items():
        print(f"  {name:14s} {c['patterns_per_s']:10.0f} patterns/s  (median "
              f"{1e3 * c['median_s']:.1f} ms per {c['patterns']} patterns)", file=say)
    mark = "yes" if r["holds"] else "NO"
    print(f"  x{r['speedup']:.1f} the numpy loop (target x{r['target']:.0f}: {mark})", file=say)
    status = _write(args, r)
    return status if r["holds"] else 1


def name_list(text: str) -> tuple[str, ...]:
    """``a,b,c`` → ``("a", "b", "c")`` (no empty names)."""
    names = tuple(t.strip() for t in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated case names, got {text!r}")
    return names


def _spm(args: argparse.Namespace) -> int:
    _check(args)
    from ..bench.spm import bench_spm

    r = bench_spm(cases=args.cases, fixtures=args.fixtures, backend=args.backend,
                  repeats=args.repeats)
    say = text_stream(args)
    print(f"spm: predcode (backend={r['config']['backend']}, min of {args.repeats} runs) "
          "beside SPM12 under GNU Octave (min of 3, from the fixture)", file=say)
    print("  case                 SPM call        SPM s   predcode s   ratio   target  holds",
          file=say)
    for c in r["cases"]:
        target = "-" if c["target"] is None else f">= {c['target']:g}x"
        holds = "-" if c["holds"] is None else ("yes" if c["holds"] else "NO")
        print(f"  {c['case']:20s} {c['spm_call']:14s} {c['spm_s']:7.3f} {c['predcode_s']:12.4f} "
              f"{c['speedup']:6.1f}x  {target:>7s}  {holds}", file=say)
    return _write(args, r)
