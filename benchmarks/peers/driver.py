"""Peer-benchmark driver: predcode against PyTorch, pcx / JAX and pymdp, case by case.

Usage (see README.md)::

    python benchmarks/peers/driver.py --cases nn --rounds 7 --reps 3 --core 0 \
        --out peers.json --md peers.md \
        [--python-predcode /work/venv/bin/python --python-torch /work/venv-torch/bin/python \
         --python-jax /work/venv-jax/bin/python]

Every implementation runs in its own worker process (``protocol.py``), started
once, pinned to the given core(s), with the BLAS/OpenMP thread counts set to the
number of those cores (and XLA single-threaded on one core). For each case:
predcode's worker exports the inputs; every implementation builds the case
(``setup_s``) and runs it once (``warmup_s``: numba / XLA / torch.compile
compilation); every peer's check outputs are compared with predcode's within the
case's tolerances; then the timing is interleaved: ``rounds`` rounds, in each
round every implementation (in an order rotated from round to round) runs the
case ``reps`` times. Medians, IQRs and minima are over all ``rounds × reps``
timings; ``ratio = peer median / predcode median`` with a bootstrap 95 %
interval; "predcode faster" only when that interval lies above 1, "peer faster"
only when it lies below 1, otherwise "tie" ("undecided" with fewer than 5
timings on a side).

Only the standard library and numpy are needed in the driver's interpreter.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import fnmatch
import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = "predcode.peers/1"

#: implementation -> (interpreter option, worker script, worker arguments)
REGISTRY: dict[str, tuple[str, str, list[str]]] = {
    "predcode": ("predcode", "worker_predcode.py", []),
    "torch-eager": ("torch", "worker_torch.py", ["--mode", "eager"]),
    "torch-compile": ("torch", "worker_torch.py", ["--mode", "compile"]),
    "pcx": ("jax", "worker_jax.py", ["--impl", "pcx"]),
    "jax": ("jax", "worker_jax.py", ["--impl", "jax"]),
    "pymdp": ("jax", "worker_pymdp.py", []),
}

#: fewer timings than this on either side: no faster/slower verdict (the bootstrap is meaningless)
MIN_N_VERDICT = 5

#: default check tolerance when a case's export carries no ``check_tol``
DEFAULT_TOL = {"default": {"rtol": 1e-4, "atol": 1e-6, "atol_rel": False}}


#: case-name prefix -> note on what its timing comparison means (no check possible)
SCHEME_NOTES = {
    "aifspm_": "predcode's own scheme (run_trials, scheme='predcode', as `predcode bench aif` "
               "times it) against pymdp's aif_* case of the same cell: different computations, "
               "timing only, no check",
}


def peers_of(case: str) -> list[tuple[str, str]]:
    """(peer implementation, the peer's case name) pairs a predcode case is timed against."""
    if case.startswith("pc_"):
        return [("pcx", case), ("jax", case)]
    if case.startswith("aif_"):
        return [("pymdp", case)]
    if case.startswith("aifspm_"):  # predcode-only scheme, timed against pymdp's aif_ cell
        return [("pymdp", "aif_" + case[len("aifspm_"):])]
    return [("torch-eager", case), ("torch-compile", case)]


def group_of(case: str) -> str:
    if case.startswith("pc_"):
        return "pc"
    if case.startswith(("aif_", "aifspm_")):
        return "aif"
    return "nn"


def scheme_note(case: str) -> str | None:
    return next((v for k, v in SCHEME_NOTES.items() if case.startswith(k)), None)


def cores_for(case: str, cores: list[int], multi: list[int]) -> list[int]:
    """Cores of a case: ``--core``, or the first k of ``--multi-core`` for ``*_<k>core`` cases."""
    tail = case.rsplit("_", 1)[-1]
    if tail.endswith("core") and tail[:-4].isdigit():
        k = int(tail[:-4])
        if k > len(multi):
            raise ValueError(f"{case} needs {k} cores, --multi-core gives {multi}")
        return multi[:k]
    return cores


# -- workers ------------------------------------------------------------------------------


class WorkerError(RuntimeError):
    pass


class Worker:
    """One implementation's worker process, spoken to in JSON lines."""

    def __init__(self, impl: str, cmd: list[str], env: dict[str, str], cores: list[int],
                 logdir: str):
        self.impl, self.cmd, self.env, self.cores = impl, cmd, env, cores
        self.log_path = os.path.join(logdir, f"{impl}.stderr.log")
        self.proc: subprocess.Popen | None = None
        self.lines: queue.Queue = queue.Queue()

    def start(self) -> None:
        cores = self.cores
        self._log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            env=self.env, cwd=HERE, text=True, bufsize=1,
            preexec_fn=lambda: os.sched_setaffinity(0, cores))
        self.lines = queue.Queue()
        threading.Thread(target=self._reader, args=(self.proc, self.lines), daemon=True).start()

    @staticmethod
    def _reader(proc: subprocess.Popen, q: queue.Queue) -> None:
        for line in proc.stdout:
            q.put(line)
        q.put(None)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self, n: int = 15) -> str:
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def request(self, timeout: float, **req: Any) -> dict[str, Any]:
        if not self.alive:
            raise WorkerError(f"{self.impl}: worker not running")
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerError(f"{self.impl}: worker died ({exc}); stderr: "
                              f"{self.stderr_tail()}") from exc
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.stop(kill=True)
            raise WorkerError(f"{self.impl}: no reply to {req['cmd']!r} within {timeout:.0f} s "
                              "(worker killed)") from None
        if line is None:
            self.proc.wait()
            raise WorkerError(f"{self.impl}: worker exited (rc {self.proc.returncode}) during "
                              f"{req['cmd']!r}; stderr: {self.stderr_tail()}")
        try:
            rep = json.loads(line)
        except json.JSONDecodeError as exc:
            raise WorkerError(f"{self.impl}: not a JSON reply: {line[:200]!r}") from exc
        if "error" in rep:
            raise WorkerError(f"{self.impl}: {rep['error']}")
        return rep

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.alive and not kill:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.alive:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


# -- load, statistics, checks -------------------------------------------------------------


def cpu_times() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies of every CPU from /proc/stat."""
    out = {}
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("cpu") and line[3:4].isdigit():
                    name, *vals = line.split()
                    v = [int(x) for x in vals[:8]]
                    idle = v[3] + v[4]
                    out[name] = (sum(v) - idle, sum(v))
    except OSError:
        pass
    return out


def busy_fraction(a: dict[str, tuple[int, int]], b: dict[str, tuple[int, int]]
                  ) -> dict[str, float]:
    out = {}
    for k in b:
        if k in a and b[k][1] > a[k][1]:
            out[k] = round((b[k][0] - a[k][0]) / (b[k][1] - a[k][1]), 3)
    return out


def summary(times: list[float]) -> dict[str, Any]:
    t = np.asarray(times, dtype=float)
    q25, q50, q75 = np.percentile(t, [25, 50, 75])
    return {"median_s": float(q50), "iqr_s": float(q75 - q25), "q25_s": float(q25),
            "q75_s": float(q75), "min_s": float(t.min()), "max_s": float(t.max()),
            "n": int(t.size)}


def bootstrap_ratio(peer: list[float], ref: list[float], n_boot: int = 2000,
                    seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of median(peer) / median(ref), resampling each independently."""
    rng = np.random.default_rng(seed)
    p, r = np.asarray(peer), np.asarray(ref)
    mp = np.median(p[rng.integers(0, p.size, (n_boot, p.size))], axis=1)
    mr = np.median(r[rng.integers(0, r.size, (n_boot, r.size))], axis=1)
    lo, hi = np.percentile(mp / mr, [2.5, 97.5])
    return float(lo), float(hi)


def tolerance_for(tol: dict[str, Any], key: str) -> dict[str, Any]:
    if key in tol:
        t = tol[key]
    else:
        pats = [p for p in tol if p != "default" and fnmatch.fnmatchcase(key, p)]
        t = tol[max(pats, key=len)] if pats else tol.get("default", DEFAULT_TOL["default"])
    return {"rtol": float(t.get("rtol", 0.0)), "atol": float(t.get("atol", 0.0)),
            "atol_rel": bool(t.get("atol_rel", False))}


def compare(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], tol: dict[str, Any]
            ) -> dict[str, Any]:
    """Elementwise |got - ref| <= atol' + rtol·|ref| per output.

    ``atol' = atol·max|ref|`` when the output's tolerance has ``atol_rel``, else ``atol``.
    """
    per, ok = {}, True
    for key, r in ref.items():
        t = tolerance_for(tol, key)
        entry: dict[str, Any] = {**t}
        if key not in got:
            entry.update(ok=False, error="missing in the peer's outputs")
        else:
            g = np.asarray(got[key], dtype=float)
            rr = np.asarray(r, dtype=float)
            if g.shape != rr.shape:
                entry.update(ok=False, error=f"shape {g.shape} != predcode's {rr.shape}")
            else:
                diff = np.abs(g - rr)
                scale = float(np.abs(rr).max()) if rr.size else 0.0
                atol = t["atol"] * scale if t["atol_rel"] else t["atol"]
                finite = bool(np.all(np.isfinite(g)))
                good = finite and bool(np.all(diff <= atol + t["rtol"] * np.abs(rr)))
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = np.where(np.abs(rr) > 0, diff / np.abs(rr), np.where(diff > 0, np.inf, 0))
                entry.update(ok=good, max_abs_diff=float(diff.max()) if diff.size else 0.0,
                             max_rel_diff=float(rel.max()) if rel.size else 0.0,
                             max_abs_diff_over_max_ref=(float(diff.max()) / scale
                                                        if scale > 0 else 0.0),
                             max_abs_ref=scale, shape=list(rr.shape), finite=finite)
        ok = ok and entry["ok"]
        per[key] = entry
    extra = sorted(set(got) - set(ref))
    return {"ok": ok, "outputs": per, "extra_outputs": extra}


def _load_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


# -- the run ------------------------------------------------------------------------------


def parse_cores(spec: str) -> list[int]:
    cores: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            cores += list(range(int(a), int(b) + 1))
        elif part.strip():
            cores.append(int(part))
    return sorted(set(cores))


def worker_env(n_cores: int) -> tuple[dict[str, str], dict[str, Any]]:
    env = dict(os.environ)
    notes: dict[str, Any] = {"OPENBLAS_CORETYPE_was_set": "OPENBLAS_CORETYPE" in env,
                             "OPENBLAS_CORETYPE_value": env.get("OPENBLAS_CORETYPE")}
    env.pop("OPENBLAS_CORETYPE", None)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
              "PREDCODE_BLAS_THREADS"):
        env[k] = str(n_cores)
    if n_cores == 1:
        flags = "--xla_cpu_multi_thread_eigen=false"
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flags).strip()
    env["PYTHONUNBUFFERED"] = "1"
    notes["set"] = {k: env[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                         "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                                         "PREDCODE_BLAS_THREADS") if k in env}
    if "XLA_FLAGS" in env:
        notes["set"]["XLA_FLAGS"] = env["XLA_FLAGS"]
    return env, notes


def machine_here() -> dict[str, Any] | None:
    try:
        from predcode.machine import machine_info
    except Exception:  # noqa: BLE001 - the driver may run outside predcode's venv
        return None
    try:
        return machine_info()
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {exc}"}


def fmt_s(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    if x >= 1.0:
        return f"{x:.3g} s"
    if x >= 1e-3:
        return f"{x * 1e3:.3g} ms"
    return f"{x * 1e6:.3g} µs"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="predcode peer benchmark (see README.md)")
    ap.add_argument("--cases", default="nn",
                    help="comma-separated case names and/or groups nn, pc, aif, all")
    ap.add_argument("--impls", default=None,
                    help="comma-separated subset of peers to run (default: all of each case's)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--core", default="0", help="core(s) to pin every worker to: 0 or 0,1 or 0-3")
    ap.add_argument("--multi-core", default="0,1",
                    help="cores for the *_<k>core cases (their first k), e.g. pc_step_2core")
    ap.add_argument("--out", default="peers.json")
    ap.add_argument("--md", default=None)
    ap.add_argument("--python-predcode", default=sys.executable)
    ap.add_argument("--python-torch", default="/work/venv-torch/bin/python")
    ap.add_argument("--python-jax", default="/work/venv-jax/bin/python")
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds to wait for one worker reply (export, setup, a time batch)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cold-caches", action="store_true",
                    help="fresh NUMBA_CACHE_DIR and TORCHINDUCTOR_CACHE_DIR for the workers, so "
                         "warmup_s is the cold compilation (default: the on-disk caches as found)")
    args = ap.parse_args(argv)

    cores = parse_cores(args.core)
    multi = parse_cores(args.multi_core)
    pythons = {"predcode": args.python_predcode, "torch": args.python_torch,
               "jax": args.python_jax}
    only = set(args.impls.split(",")) if args.impls else None
    logdir = tempfile.mkdtemp(prefix="predcode-peers-")
    workdir = os.path.join(logdir, "io")
    os.makedirs(workdir)
    t_start = time.time()

    workers: dict[str, Worker] = {}
    infos: dict[str, Any] = {}
    listed: dict[str, list[str]] = {}
    start_errors: dict[str, str] = {}
    env_notes: dict[str, Any] = {}

    def key_of(impl: str, cs: list[int]) -> str:
        return impl if cs == cores else f"{impl}@cores{','.join(map(str, cs))}"

    def get(impl: str, cs: list[int]) -> Worker | None:
        """The implementation's worker on cores ``cs``, started once (again after a crash)."""
        key = key_of(impl, cs)
        w = workers.get(key)
        if w is not None and w.alive:
            return w
        if key in start_errors and w is None:
            return None
        opt, script, extra = REGISTRY[impl]
        py = pythons[opt]
        if not (os.path.exists(py) or shutil.which(py)):
            start_errors[key] = f"interpreter {py} not found (--python-{opt})"
            return None
        if not os.path.exists(os.path.join(HERE, script)):
            start_errors[key] = f"worker script {script} not present"
            return None
        env, notes = worker_env(len(cs))
        if args.cold_caches:
            env["NUMBA_CACHE_DIR"] = os.path.join(logdir, "numba-cache")
            env["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(logdir, "inductor-cache")
            notes["cold_caches"] = {k: env[k] for k in ("NUMBA_CACHE_DIR",
                                                        "TORCHINDUCTOR_CACHE_DIR")}
        env_notes[f"{len(cs)} core(s)"] = notes
        w = Worker(key, [py, os.path.join(HERE, script), *extra], env, cs, logdir)
        try:
            w.start()
            infos[key] = w.request(args.timeout, cmd="info")
            listed[key] = w.request(args.timeout, cmd="list")["cases"]
        except (WorkerError, OSError) as exc:
            start_errors[key] = str(exc)
            print(f"[driver] {key}: failed to start: {exc}", file=sys.stderr)
            w.stop(kill=True)
            workers.pop(key, None)
            return None
        start_errors.pop(key, None)
        workers[key] = w
        return w

    if get("predcode", cores) is None:
        print(f"[driver] predcode worker failed: {start_errors.get('predcode')}", file=sys.stderr)
        return 2
    available = listed["predcode"]
    wanted: list[str] = []
    for item in args.cases.split(","):
        item = item.strip()
        if item in ("nn", "pc", "aif", "all"):
            wanted += [c for c in available if item == "all" or group_of(c) == item]
        elif item:
            wanted.append(item)
    wanted = list(dict.fromkeys(wanted))

    results: dict[str, Any] = {}
    for case in wanted:
        print(f"[driver] case {case}", file=sys.stderr)
        row: dict[str, Any] = {"group": group_of(case), "impls": {}, "notes": []}
        results[case] = row
        if case not in available:
            row["notes"].append("predcode does not list this case: skipped")
            continue
        try:
            cs = cores_for(case, cores, multi)
        except ValueError as exc:
            row["error"] = str(exc)
            continue
        row["cores"] = cs
        note = scheme_note(case)
        if note:
            row["notes"].append(note)
        pairs = [(p, pc) for p, pc in peers_of(case) if only is None or p in only]
        peers = [p for p, _ in pairs]
        row["peers"] = peers
        params = {"seed": args.seed}
        load0, cpu0 = os.getloadavg(), cpu_times()
        t0 = time.time()
        exports: dict[str, str] = {}  # case name -> exported inputs file
        tol = DEFAULT_TOL
        try:
            pw = get("predcode", cs)
            if pw is None:
                raise WorkerError(start_errors.get(key_of("predcode", cs), "predcode worker "
                                                   "not running"))
            for c in dict.fromkeys([case, *(pc for _, pc in pairs)]):
                if c != case and c not in available:
                    continue
                path = os.path.join(workdir, f"{c}.inputs.npz")
                te = time.perf_counter()
                pw.request(args.timeout, cmd="export", case=c, params=params, path=path)
                row.setdefault("export_s", {})[c] = time.perf_counter() - te
                exports[c] = path
        except WorkerError as exc:
            row["error"] = f"export failed: {exc}"
            continue
        exported = _load_npz(exports[case])
        if "check_tol" in exported:
            tol = json.loads(str(exported["check_tol"]))
        row["tolerance"] = tol
        row["inputs"] = {k: list(v.shape) for k, v in exported.items() if k != "check_tol"}

        run: dict[str, tuple[Worker, str]] = {}  # impl -> (worker, its case name)
        ref_out: dict[str, np.ndarray] | None = None
        for impl, icase in [("predcode", case), *pairs]:
            entry: dict[str, Any] = {"case": icase}
            row["impls"][impl] = entry
            w = get(impl, cs)
            if w is None:
                entry["skipped"] = f"worker unavailable: {start_errors.get(key_of(impl, cs))}"
                continue
            if icase not in listed.get(w.impl, []):
                entry["skipped"] = f"{impl} does not list {icase}"
                continue
            try:
                entry.update(w.request(args.timeout, cmd="setup", case=icase, params=params,
                                       inputs=exports.get(icase, exports[case])))
                out_path = os.path.join(workdir, f"{case}.{impl}.outputs.npz")
                w.request(args.timeout, cmd="outputs", case=icase, path=out_path)
                got = _load_npz(out_path)
            except WorkerError as exc:
                entry["error"] = str(exc)
                continue
            if impl == "predcode":
                ref_out = got
                entry["check"] = {"ok": True, "reference": True,
                                  "outputs": {k: list(v.shape) for k, v in got.items()}}
            elif ref_out is None:
                entry["check"] = {"ok": False, "error": "no predcode outputs to compare with"}
            elif not ref_out or icase != case:
                entry["check"] = {"ok": None, "note": "not checked: " + (
                    note or "predcode's case has no outputs to compare")}
            else:
                entry["check"] = compare(ref_out, got, tol)
            run[impl] = (w, icase)
        if "predcode" not in run:
            row["error"] = row["impls"]["predcode"].get("error") or row["impls"]["predcode"].get(
                "skipped", "predcode setup failed")

        order0 = list(run)
        times: dict[str, list[float]] = {i: [] for i in order0}
        rounds_log = []
        for r in range(args.rounds):
            k = r % max(len(order0), 1)
            order = order0[k:] + order0[:k]
            rounds_log.append(order)
            for impl in order:
                if "error" in row["impls"][impl]:
                    continue
                w, icase = run[impl]
                try:
                    rep = w.request(args.timeout, cmd="time", case=icase, reps=args.reps)
                    times[impl] += rep["times"]
                except (WorkerError, KeyError) as exc:
                    row["impls"][impl]["error"] = f"timing failed: {exc}"
        row["wall_s"] = time.time() - t0
        row["load"] = {"loadavg_before": list(load0), "loadavg_after": list(os.getloadavg()),
                       "cpu_busy_fraction": busy_fraction(cpu0, cpu_times())}
        row["order_per_round"] = rounds_log
        for impl, ts in times.items():
            if ts:
                row["impls"][impl].update(summary(ts), times_s=ts)
        ref = row["impls"].get("predcode", {})
        row["ratios"] = {}
        for impl in peers:
            e = row["impls"].get(impl, {})
            if "median_s" not in e or "median_s" not in ref:
                continue
            lo, hi = bootstrap_ratio(e["times_s"], ref["times_s"], seed=args.seed)
            ratio = e["median_s"] / ref["median_s"]
            if min(e["n"], ref["n"]) < MIN_N_VERDICT:
                verdict = f"undecided (n < {MIN_N_VERDICT})"
            else:
                verdict = "predcode faster" if lo > 1 else "peer faster" if hi < 1 else "tie"
            ok = e.get("check", {}).get("ok")
            flag = None
            if ok is False:
                flag = "check failed: timing of a computation that does not agree with predcode's"
            elif ok is None:
                flag = "not checked: " + (note or "no outputs to compare")
            row["ratios"][impl] = {"ratio": ratio, "ci95": [lo, hi],
                                   "ci_method": "bootstrap of the ratio of medians, 2000 "
                                                "resamples of each side's timings, 2.5-97.5 %",
                                   "minmax_interval": [e["min_s"] / ref["max_s"],
                                                       e["max_s"] / ref["min_s"]],
                                   "min_ratio": e["min_s"] / ref["min_s"], "verdict": verdict,
                                   "check_ok": ok, "flag": flag}
        for impl in [i for i in ("predcode", *peers) if i in row["impls"]]:
            e = row["impls"][impl]
            print(f"[driver]   {impl}: median {fmt_s(e.get('median_s'))} "
                  f"check {e.get('check', {}).get('ok')} {e.get('error', '')}"
                  f"{e.get('skipped', '')}", file=sys.stderr)

    for w in workers.values():
        w.stop()

    machine = machine_here()
    machine_source = "driver"
    if machine is None:
        machine = infos.get("predcode", {}).get("threads", {}).get("machine")
        machine_source = "predcode worker"
    doc = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "config": {"cases": wanted, "rounds": args.rounds, "reps": args.reps, "cores": cores,
                   "multi_core": multi, "seed": args.seed, "timeout_s": args.timeout,
                   "pythons": pythons, "impls_filter": sorted(only) if only else None,
                   "cold_caches": args.cold_caches},
        "env": env_notes,
        "machine": machine, "machine_source": machine_source,
        "driver": {"python": platform.python_version(), "numpy": np.__version__},
        "workers": infos, "worker_start_errors": start_errors,
        "stderr_logs": logdir,
        "wall_s": time.time() - t_start,
        "cases": results,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1, default=str)
    md = markdown(doc)
    if args.md:
        with open(args.md, "w") as f:
            f.write(md)
    print(md)
    return 0


def markdown(doc: dict[str, Any]) -> str:
    """One row per (case, peer): medians (IQR), ratio with its 95 % interval, check."""
    cfg = doc["config"]
    m = doc.get("machine") or {}
    cpu = m.get("cpu") or m.get("processor") or platform.processor() or "?"
    lines = [f"Peer benchmark ({doc['created']}; cores {cfg['cores']}; {cfg['rounds']} rounds x "
             f"{cfg['reps']} reps, interleaved; CPU {cpu})", "",
             "| case | peer | predcode median (IQR) | peer median (IQR) | ratio peer/predcode "
             "[95% CI] | verdict | check |",
             "|---|---|---|---|---|---|---|"]
    for case, row in doc["cases"].items():
        ref = row["impls"].get("predcode", {})
        pref = (f"{fmt_s(ref['median_s'])} ({fmt_s(ref['iqr_s'])})" if "median_s" in ref
                else "-")
        if "error" in row or not row.get("peers"):
            why = row.get("error") or "; ".join(row["notes"]) or "no peers"
            lines.append(f"| {case} | - | {pref} | - | - | - | {why} |")
            continue
        for peer in row["peers"]:
            e = row["impls"].get(peer, {})
            if "median_s" not in e:
                why = e.get("skipped") or e.get("error") or "no timing"
                lines.append(f"| {case} | {peer} | {pref} | - | - | - | "
                             f"{why.replace('|', '/')[:120]} |")
                continue
            rt = row["ratios"].get(peer, {})
            chk = e.get("check", {})
            ok = chk.get("ok")
            worst = max((o.get("max_abs_diff_over_max_ref", 0.0)
                         for o in chk.get("outputs", {}).values()
                         if isinstance(o, dict)), default=0.0)
            verdict = rt.get("verdict", "-")
            if ok is False:
                verdict += " (FLAGGED: check failed)"
            elif ok is None:
                verdict += " (not checked)"
            if ok is None:
                shown = "n/a (different scheme)" if scheme_note(case) else "n/a"
            else:
                shown = f"{'yes' if ok else 'NO'} ({worst:.1e})"
            pname = peer if e.get("case", case) == case else f"{peer} ({e['case']})"
            lines.append(
                f"| {case} | {pname} | {pref} | {fmt_s(e['median_s'])} ({fmt_s(e['iqr_s'])}) | "
                f"{rt.get('ratio', float('nan')):.2f} [{rt['ci95'][0]:.2f}, {rt['ci95'][1]:.2f}] "
                f"| {verdict} | {shown} |")
    lines += ["", "| case | implementation | setup_s | warmup_s (first run: compilation) |",
              "|---|---|---|---|"]
    for case, row in doc["cases"].items():
        for impl, e in row["impls"].items():
            if "setup_s" in e:
                lines.append(f"| {case} | {impl} | {e['setup_s']:.3g} | {e['warmup_s']:.3g} |")
    lines += ["", "check: yes/NO against predcode's outputs within the case's tolerances (in the "
              "JSON); in brackets the largest max|peer - predcode| / max|predcode| over the "
              "checked outputs. ratio > 1: predcode is faster.", ""]
    for case, row in doc["cases"].items():
        ld = row.get("load")
        if ld:
            lines.append(f"- {case} (cores {row.get('cores')}): load "
                         f"{ld['loadavg_before'][0]:.2f} -> "
                         f"{ld['loadavg_after'][0]:.2f}; CPU busy {ld['cpu_busy_fraction']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
