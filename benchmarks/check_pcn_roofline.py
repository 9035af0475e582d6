"""Speed target of the PC-network training step (run by hand or in a benchmark job).

Target: a discriminative PCN step (784-300-300-10, batch 64, T = 20, tanh,
float32, gamma 0.1, lr 1e-4) reaches >= 90 % of the same-run single-thread GEMM
roofline on the numba backend. Prints the figures and exits 1 below target.

    python benchmarks/check_pcn_roofline.py [--backend numba] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys

from predcode.bench import bench_pcn

TARGET = 0.90


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="numba")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    r = bench_pcn(sizes=(784, 300, 300, 10), batch=64, steps=20, activation="tanh",
                  backend=args.backend, dtype="float32", threads=1, min_time=3.0)
    frac = r["roofline_fraction"]
    print(f"{args.backend}: {1e3 * r['step']['median_s']:.3f} ms/step, "
          f"{r['achieved_gflops']:.1f} GFLOP/s, {100 * frac:.1f} % of the same-run GEMM "
          f"roofline (target {100 * TARGET:.0f} %)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(r, fh, indent=2)
    return 0 if frac >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
