"""Speed regressions of the families that are already fast (issue 15 item 6).

One row per target, each marked yes or NO, exit status 1 when any is NO:

* Helmholtz online wake-sleep (16-8-1, 4x4 bars), numba: >= 20x the plain numpy
  loop's patterns/s (``predcode bench helmholtz``);
* DEM and generalized filtering on SPM's own demos: >= 20x SPM12 under Octave, the
  time recorded in the fixture (``predcode bench spm``, the cases with a target);
* the PC training step: >= 90 % of the same-run GEMM roofline
  (``benchmarks/check_pcn_roofline.py``).

    python benchmarks/check_regressions.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys

from predcode.bench import bench_helmholtz, bench_pcn
from predcode.bench.spm import bench_spm


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=None)
    args = p.parse_args()
    rows = []
    h = bench_helmholtz()
    rows.append(("helmholtz online, numba vs numpy loop", h["speedup"], h["target"], "x"))
    for c in bench_spm()["cases"]:
        if c["target"] is not None:
            rows.append((f"{c['case']} vs SPM12 (Octave)", c["speedup"], c["target"], "x"))
    pc = bench_pcn(min_time=3.0)
    rows.append(("PC step, fraction of GEMM roofline", pc["roofline_fraction"], 0.90, ""))
    ok = True
    for name, value, target, unit in rows:
        holds = value >= target
        ok &= holds
        print(f"{name:44s} {unit}{value:8.2f}  target {unit}{target:.2f}  "
              f"{'yes' if holds else 'NO'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": [dict(zip(("case", "value", "target", "unit"), r, strict=True))
                                | {"holds": bool(r[1] >= r[2])} for r in rows],
                       "machine": h["machine"]}, fh, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
