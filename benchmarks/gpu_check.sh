#!/usr/bin/env bash
# GPU check of predcode: the CuPy tests and the GPU bench case of every family,
# in one JSON, within a time budget (default 480 s = 8 minutes).
#
# Usage: benchmarks/gpu_check.sh [--out PATH] [--budget SECONDS] [--python PATH]
#                                [--backend NAME] [--dry-run]
#   --out PATH        the JSON to write (default gpu_check.json, relative to the
#                     current folder; missing parent folders are created)
#   --budget SECONDS  wall-clock budget of all steps together (default 480)
#   --python PATH     interpreter with predcode's dependencies, CuPy included
#                     (default: $PYTHON, else python3)
#   --backend NAME    cupy (default); numpy or numba rehearse every step on the
#                     CPU (the gpu tests then skip): not a GPU check
#   --dry-run         check the arguments and the GPU, run no step, and write the
#                     JSON skeleton (every step "planned"); exits 0 without a GPU
#   -h, --help        show this help
#
# Steps (each under `timeout`, never past what is left of the budget):
#   pytest_gpu  python -m pytest -m gpu            (the cupy-parametrized tests)
#   bench_pcn   predcode bench pcn  --backend cupy
#   bench_aif   predcode bench aif  --backend cupy
#   bench_jepa  predcode bench jepa --backend "$BACKEND"
#   bench_dem   predcode bench dem  --backend cupy, skipped with the library's
#               reason while DEM has no cupy path
# Exit status: 0 all steps passed or were skipped for a stated reason, 1 a step
# failed or timed out, 2 bad arguments, 3 no usable CuPy / CUDA device.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
die_usage() { echo "gpu_check: $1" >&2; usage >&2; exit 2; }

OUT="gpu_check.json"
BUDGET=480
PY="${PYTHON:-python3}"
DRY=0
BACKEND=cupy
ARGV="$*"
while [ $# -gt 0 ]; do
    case "$1" in
        --out|--budget|--python|--backend)
            [ $# -ge 2 ] && [ -n "$2" ] || die_usage "$1 needs a value"
            case "$1" in --out) OUT="$2" ;; --budget) BUDGET="$2" ;; --python) PY="$2" ;;
                         --backend) BACKEND="$2" ;; esac
            shift ;;
        --out=*) OUT="${1#--out=}"; [ -n "$OUT" ] || die_usage "--out needs a value" ;;
        --budget=*) BUDGET="${1#--budget=}" ;;
        --python=*) PY="${1#--python=}" ;;
        --backend=*) BACKEND="${1#--backend=}" ;;
        --dry-run) DRY=1 ;;
        -h|--help) usage; exit 0 ;;
        *) die_usage "unknown option $1" ;;
    esac
    shift
done
case "$BUDGET" in ''|*[!0-9]*) die_usage "--budget must be a positive whole number of seconds, got '$BUDGET'" ;; esac
[ "$BUDGET" -gt 0 ] || die_usage "--budget must be a positive whole number of seconds, got '$BUDGET'"
case "$BACKEND" in cupy|numpy|numba) ;; *) die_usage "--backend must be cupy, numpy or numba, got '$BACKEND'" ;; esac
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
[ -d "$OUT" ] && die_usage "--out $OUT is a folder; give a file path"
mkdir -p "$(dirname "$OUT")" 2>/dev/null || die_usage "--out: cannot create the folder of $OUT"
command -v "$PY" >/dev/null 2>&1 || die_usage "--python: no interpreter '$PY'"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
START=$SECONDS
STARTED_AT="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
cd "$ROOT"

# -- the GPU: CuPy importable and at least one CUDA device ---------------------
"$PY" - >"$WORK/gpu.json" 2>"$WORK/gpu.err" <<'EOF'
import json, sys
info = {"available": False, "reason": None}
try:
    import cupy
except Exception as exc:
    info["reason"] = (f"CuPy is not importable ({type(exc).__name__}: {exc}); install "
                      "predcode[gpu] (cupy-cuda12x) on a machine with a CUDA device")
else:
    info["cupy_version"] = cupy.__version__
    try:
        n = cupy.cuda.runtime.getDeviceCount()
        info["device_count"] = n
        if n < 1:
            raise RuntimeError("no CUDA device")
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        info["device_name"] = name.decode() if isinstance(name, bytes) else str(name)
        info["memory_gib"] = round(props["totalGlobalMem"] / 2**30, 1)
        info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        info["driver"] = cupy.cuda.runtime.driverGetVersion()
        (cupy.arange(4) + 1).sum().item()  # a kernel really runs
        info["available"] = True
    except Exception as exc:
        info["reason"] = (f"CuPy {cupy.__version__} is installed but finds no usable CUDA "
                          f"device ({type(exc).__name__}: {exc})")
json.dump(info, sys.stdout)
EOF
if [ ! -s "$WORK/gpu.json" ]; then
    echo "{\"available\": false, \"reason\": \"the interpreter $PY failed to run the GPU probe\"}" >"$WORK/gpu.json"
fi
GPU_OK="$("$PY" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["available"]))' "$WORK/gpu.json" 2>/dev/null || echo 0)"

# -- steps ---------------------------------------------------------------------
# Each step leaves $WORK/<name>.step (status rc elapsed timeout), .cmd, .log and,
# for a bench, the bench JSON $WORK/<name>.json.
BENCH=("$PY" -c "import sys; from predcode.cli import main; sys.exit(main())" bench)

run_step() {  # run_step NAME TIMEOUT CMD...
    local name="$1" limit="$2"; shift 2
    printf '%s\n' "$@" >"$WORK/$name.cmd"
    local left=$((BUDGET - (SECONDS - START)))
    [ "$limit" -le "$left" ] || limit="$left"
    if [ "$DRY" = 1 ]; then
        echo "planned 0 0 $limit" >"$WORK/$name.step"; echo "[$name] planned (timeout ${limit} s): $*"
        return
    fi
    if [ "$limit" -le 0 ]; then
        echo "timeout 124 0 0" >"$WORK/$name.step"; echo "budget spent" >"$WORK/$name.log"
        echo "[$name] not run: the ${BUDGET} s budget is spent" >&2; return
    fi
    echo "[$name] running (timeout ${limit} s): $*"
    local t0=$SECONDS rc=0 status=passed
    timeout --kill-after=10 "$limit" "$@" >"$WORK/$name.log" 2>&1 || rc=$?
    case "$rc" in 0) ;; 124|137) status=timeout ;; *) status=failed ;; esac
    echo "$status $rc $((SECONDS - t0)) $limit" >"$WORK/$name.step"
    echo "[$name] $status (exit $rc) in $((SECONDS - t0)) s"
    [ "$status" = passed ] || tail -n 20 "$WORK/$name.log" >&2
}

skip_step() {  # skip_step NAME REASON
    echo "skipped 0 0 0" >"$WORK/$1.step"; printf '%s\n' "$2" >"$WORK/$1.reason"
    echo "[$1] skipped: $2"
}

if [ "$GPU_OK" != 1 ] && [ "$DRY" != 1 ] && [ "$BACKEND" = cupy ]; then
    REASON="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["reason"])' "$WORK/gpu.json" 2>/dev/null || echo "no usable GPU")"
    echo "gpu_check: no GPU check possible here: $REASON" >&2
    echo "gpu_check: run it on a machine with CuPy and a CUDA device (or use --dry-run)" >&2
    STATUS=no_gpu
else
    STATUS=run
    run_step pytest_gpu 210 "$PY" -m pytest -q -p no:cacheprovider -m gpu \
        --junitxml="$WORK/pytest_gpu.xml"
    run_step bench_pcn 50 "${BENCH[@]}" pcn --backend "$BACKEND" --dtype float32 --repeats 20 \
        --min-time 1 --json "$WORK/bench_pcn.json"
    run_step bench_aif 70 "${BENCH[@]}" aif --backend "$BACKEND" --dtype float32 --repeats 3 \
        --min-time 0.5 --json "$WORK/bench_aif.json"
    run_step bench_jepa 90 "${BENCH[@]}" jepa --backend "$BACKEND" --repeats 5 --min-time 1 \
        --json "$WORK/bench_jepa.json"
    # DEM: does it take backend="cupy"? Ask the library rather than assume.
    DEM_WHY=""
    [ "$DRY" = 1 ] || DEM_WHY="$("$PY" - "$BACKEND" 2>/dev/null <<'EOF'
import sys
import numpy as np
from predcode.exceptions import ValidationError
from predcode.bench.dem import linear_model
from predcode.models.dem import DEM, simulate
m = linear_model(2, 2)
Y = simulate(m, np.zeros((8, 1)), random_state=0)["Y"]
try:
    DEM(m, n_iter=1, backend=sys.argv[1]).fit(Y)
except ValidationError as exc:
    print(str(exc).splitlines()[0] if "backend" in str(exc) else "")
EOF
)"
    [ "$DRY" = 1 ] && printf '%s\n' "probed at run time: skipped with the library's reason if DEM refuses this backend" >"$WORK/bench_dem.reason"
    if [ -n "$DEM_WHY" ]; then
        skip_step bench_dem "no cupy path: $DEM_WHY"
    else
        run_step bench_dem 40 "${BENCH[@]}" dem --backend "$BACKEND" --repeats 3 \
            --json "$WORK/bench_dem.json"
    fi
fi

# -- the one JSON --------------------------------------------------------------
"$PY" - "$WORK" "$OUT" "$STATUS" "$DRY" "$BUDGET" "$STARTED_AT" "$((SECONDS - START))" \
    "$PY" "$ARGV" "$BACKEND" <<'EOF'
import json, os, sys, time
import xml.etree.ElementTree as ET

work, out, status, dry, budget, started, wall, py, argv, backend = sys.argv[1:]
dry = dry == "1"
STEPS = ["pytest_gpu", "bench_pcn", "bench_aif", "bench_jepa", "bench_dem"]


def read(name, default=None):
    p = os.path.join(work, name)
    return open(p).read() if os.path.exists(p) else default


steps = {}
for name in STEPS:
    meta = read(f"{name}.step")
    if meta is None:
        steps[name] = {"status": "not_run", "reason": "no usable GPU"}
        continue
    st, rc, elapsed, limit = meta.split()
    s = {"status": st, "exit_code": int(rc), "elapsed_s": int(elapsed), "timeout_s": int(limit),
         "command": (read(f"{name}.cmd") or "").splitlines()}
    if read(f"{name}.reason"):
        s["reason"] = read(f"{name}.reason").strip()
    log = read(f"{name}.log")
    if log is not None and st != "passed":
        s["log_tail"] = log.splitlines()[-30:]
    result = None
    if name == "pytest_gpu" and os.path.exists(os.path.join(work, "pytest_gpu.xml")):
        try:
            root = ET.parse(os.path.join(work, "pytest_gpu.xml")).getroot()
            suite = root if root.tag == "testsuite" else root.find("testsuite")
            result = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
            result["passed"] = (result["tests"] - result["failures"] - result["errors"]
                                - result["skipped"])
            result["time_s"] = float(suite.get("time", 0))
        except Exception as exc:  # a broken report is recorded, not fatal
            result = {"error": f"cannot read the junit report: {exc}"}
    elif read(f"{name}.json"):
        try:
            result = json.loads(read(f"{name}.json"))
        except ValueError as exc:
            result = {"error": f"cannot read the bench JSON: {exc}"}
    if result is not None:
        s["result"] = result
    steps[name] = s


def figures():
    f = {}
    r = steps["bench_pcn"].get("result") or {}
    if "step" in r:
        f["pcn"] = {"ms_per_step": 1e3 * r["step"]["median_s"], "steps_per_s": r["steps_per_s"],
                    "achieved_gflops": r["achieved_gflops"],
                    "roofline_fraction": r["roofline_fraction"]}
    r = steps["bench_aif"].get("result") or {}
    if "cases" in r:
        f["aif"] = {f"S{c['states']}_P{c['policies']}": {
            "ms_per_trial": 1e3 * c["median_s"], "agent_steps_per_s": c["agent_steps_per_s"]}
            for c in r["cases"]}
    r = steps["bench_jepa"].get("result") or {}
    if "cases" in r:
        f["jepa"] = {k: {"ms": 1e3 * c["median_s"]} for k, c in r["cases"].items()}
        f["jepa"]["planning_speedup_latent_vs_pixel"] = r.get("planning_speedup_latent_vs_pixel")
    r = steps["bench_dem"].get("result") or {}
    if "by_order" in r:
        f["dem"] = {f"n{c['n']}_nx{c['n_x']}": {"dem_ms": 1e3 * c["dem"]["median_s"],
                                                 "filter_ms": 1e3 * c["filter"]["median_s"]}
                    for c in r["by_order"] + r["by_state_size"]}
    pt = steps["pytest_gpu"].get("result") or {}
    if "tests" in pt:
        f["pytest_gpu"] = {k: pt[k] for k in ("passed", "failures", "errors", "skipped")}
    return f


if dry:
    overall = "dry_run"
elif status == "no_gpu":
    overall = "no_gpu"
else:
    bad = [n for n, s in steps.items() if s["status"] not in ("passed", "skipped")]
    overall = "failed" if bad else "passed"
try:
    from predcode import __version__ as version
except Exception as exc:
    version = f"unknown ({type(exc).__name__})"
doc = {
    "schema": "predcode.gpu_check/1",
    "status": overall,
    "dry_run": dry,
    "backend": backend,
    "argv": argv,
    "started_at": started,
    "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "wall_time_s": int(wall),
    "budget_s": int(budget),
    "python": py,
    "predcode_version": version,
    "gpu": json.loads(read("gpu.json") or '{"available": false}'),
    "steps": steps,
    "figures": figures(),
}
with open(out, "w") as fh:
    json.dump(doc, fh, indent=2)
print(f"gpu_check: {overall} in {wall} s; wrote {out}")
EOF
WROTE=$?
[ "$WROTE" = 0 ] || { echo "gpu_check: could not write $OUT" >&2; exit 1; }
[ "$DRY" = 1 ] && exit 0
[ "$STATUS" = no_gpu ] && exit 3
"$PY" -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["status"] == "passed" else 1)' "$OUT"
