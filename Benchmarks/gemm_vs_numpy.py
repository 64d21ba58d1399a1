#!/usr/bin/env python3
"""Compare Sculpt's SGEMM with numpy's (OpenBLAS) float32 matmul, same sizes, same run.

For each thread count (default: 1, then the machine's core count) this runs

    <sculpt> bench gemm --sizes 1024,2048 --threads T --json

(default <sculpt>: "swift run -c release sculpt"; override with --sculpt CMD, e.g.
--sculpt .build/release/sculpt), which prints one JSON object per line with the keys
op, m, n, k, threads, seconds, gflops, and then times numpy's C = A @ B (float32, row-major,
square) at the same sizes in a subprocess with OPENBLAS_NUM_THREADS=T (threadpoolctl is used
too when installed). Both sides report the best (minimum) seconds per call after warm-up.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the numpy subprocess's environment only:
this machine's defaults (Haswell, a small L2) make current OpenBLAS pick slower kernels. The
OpenBLAS core/kernel in use is printed.

Usage: python3 Benchmarks/gemm_vs_numpy.py [--sizes 1024,2048] [--threads 1,2] [--sculpt CMD]
       [--min-seconds 1.0] [--rounds 1]
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

NUMPY_WORKER = r"""
import json, sys, time
import numpy as np

sizes = [int(s) for s in sys.argv[1].split(",")]
threads = int(sys.argv[2])
min_seconds = float(sys.argv[3])

limiter = None
try:
    from threadpoolctl import threadpool_limits, threadpool_info
    limiter = threadpool_limits(limits=threads, user_api="blas")
    info = [
        {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
        for d in threadpool_info() if d.get("user_api") == "blas"
    ]
except ImportError:
    info = None


def corename():
    # numpy wheels bundle scipy-openblas; ask it which kernel set it picked at load time.
    import ctypes, glob, os
    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libdir, "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename64_", "openblas_get_corename"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return None


def blas_config():
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return {k: blas.get(k) for k in ("name", "version")}
    except Exception:
        return None


print(json.dumps({"numpy": np.__version__, "blas": blas_config(), "corename": corename(),
                  "threadpoolctl": info}), flush=True)

rng = np.random.default_rng(0)
for n in sizes:
    a = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    c = np.empty((n, n), dtype=np.float32)

    def call():
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        return time.perf_counter() - t

    warm, calls = 0.0, 0
    while calls < 2 or warm < 0.1 * min_seconds:
        warm += call()
        calls += 1
    best, total, calls = float("inf"), 0.0, 0
    while calls < 3 or total < min_seconds:
        t = call()
        best = min(best, t)
        total += t
        calls += 1
    print(json.dumps({"op": "sgemm", "m": n, "n": n, "k": n, "threads": threads,
                      "seconds": best, "gflops": 2.0 * n ** 3 / best / 1e9}), flush=True)
"""


def json_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def run_sculpt(cmd, sizes, threads):
    argv = shlex.split(cmd) + ["bench", "gemm", "--sizes", ",".join(map(str, sizes)),
                               "--threads", str(threads), "--json"]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"sculpt command failed ({proc.returncode}): {' '.join(argv)}")
    return {r["m"]: r for r in json_lines(proc.stdout) if r.get("op") == "sgemm"}


def run_numpy(sizes, threads, min_seconds):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    proc = subprocess.run([sys.executable, "-c", NUMPY_WORKER, ",".join(map(str, sizes)),
                           str(threads), str(min_seconds)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit("numpy benchmark failed")
    rows = json_lines(proc.stdout)
    return rows[0], {r["m"]: r for r in rows[1:]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1024,2048", help="comma-separated square sizes")
    ap.add_argument("--threads", default=None,
                    help="comma-separated thread counts (default: 1 and the machine's core count)")
    ap.add_argument("--sculpt", default="swift run -c release sculpt",
                    help="command that runs the sculpt CLI (bench gemm ... is appended)")
    ap.add_argument("--min-seconds", type=float, default=1.0, help="numpy timing budget per size")
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate sculpt and numpy this many times and keep each side's best "
                         "(steadier numbers on a shared machine)")
    args = ap.parse_args()

    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.threads:
        thread_counts = [int(t) for t in args.threads.split(",") if t]
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        thread_counts = sorted({1, cores})

    def best(old, new):
        for n, r in new.items():
            if n not in old or r["gflops"] > old[n]["gflops"]:
                old[n] = r

    rows = []
    for t in thread_counts:
        sculpt, numpy_results = {}, {}
        for _ in range(max(1, args.rounds)):
            best(sculpt, run_sculpt(args.sculpt, sizes, t))
            info, np_round = run_numpy(sizes, t, args.min_seconds)
            best(numpy_results, np_round)
        if t == thread_counts[0]:
            print(f"numpy {info.get('numpy')}  blas {info.get('blas')}  OpenBLAS core: {info.get('corename')}")
            if info.get("threadpoolctl"):
                print(f"threadpoolctl: {info['threadpoolctl']}")
        for n in sizes:
            s = sculpt.get(n, {}).get("gflops")
            p = numpy_results.get(n, {}).get("gflops")
            rows.append((n, t, s, p))

    print()
    print(f"{'size':>6} {'threads':>7} {'sculpt GFLOP/s':>15} {'numpy GFLOP/s':>14} {'ratio':>6}")
    for n, t, s, p in rows:
        ratio = f"{s / p:6.3f}" if s and p else "     -"
        fs = f"{s:15.1f}" if s is not None else f"{'-':>15}"
        fp = f"{p:14.1f}" if p is not None else f"{'-':>14}"
        print(f"{n:>6} {t:>7} {fs} {fp} {ratio}")


if __name__ == "__main__":
    main()
