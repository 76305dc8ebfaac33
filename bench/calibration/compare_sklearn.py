#!/usr/bin/python3
"""Times scikit-learn's isotonic fit + predict against clm-bench-isotonic on the same data, and checks that
both give the same thresholds and predictions.

    /usr/bin/python3 bench/calibration/compare_sklearn.py --binary build/bench/calibration/clm-bench-isotonic \
        [--n 1000000] [--rounded] [--weighted] [--repeats 3] [--workdir /tmp]

Needs Debian's python3-sklearn (1.2.1) and python3-numpy. Each side is timed on fit + predict only, with the
data already in memory (sklearn) or already parsed (our binary reports its own fit_predict_seconds), the
fastest of --repeats runs in one process for both; our cold first run is printed too. Exits non-zero when the
results differ by more than 1e-9.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np
import sklearn
from sklearn.isotonic import IsotonicRegression


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True, help="path to clm-bench-isotonic")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--rounded", action="store_true", help="round confidences to 0.01 (heavy ties)")
    ap.add_argument("--weighted", action="store_true",
                    help="random weights in [0.5, 1.5) (the general, unpacked path)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20260209)
    ap.add_argument("--workdir", default="/tmp")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    x = rng.random(args.n)
    if args.rounded:
        x = np.round(x, 2)
    y = (rng.random(args.n) < x ** 2).astype(np.float64)
    w = 0.5 + rng.random(args.n) if args.weighted else None

    tag = "%d%s%s" % (args.n, "_rounded" if args.rounded else "", "_weighted" if args.weighted else "")
    data = os.path.join(args.workdir, "clm_isotonic_%s.csv" % tag)
    out = os.path.join(args.workdir, "clm_isotonic_%s_thresholds.csv" % tag)
    pred = os.path.join(args.workdir, "clm_isotonic_%s_predictions.csv" % tag)
    with open(data, "w") as f:
        if w is None:
            f.write("confidence,label\n")
            f.write("\n".join("%r,%r" % (a, b) for a, b in zip(x.tolist(), y.tolist())))
        else:
            f.write("confidence,label,weight\n")
            f.write("\n".join("%r,%r,%r" % r for r in zip(x.tolist(), y.tolist(), w.tolist())))
        f.write("\n")

    sk_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ir = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(x, y, sample_weight=w)
        sk_pred = ir.predict(x)
        sk_times.append(time.perf_counter() - t0)

    res = subprocess.run([args.binary, "--input", data, "--output", out, "--predictions", pred,
                          "--repeats", str(args.repeats)], check=True, capture_output=True, text=True)
    fields = dict(line.split("=", 1) for line in res.stdout.split() if "=" in line)
    our_times = [float(fields["fit_predict_seconds"])]
    our_first = float(fields["fit_predict_seconds_first"])

    ours = np.loadtxt(out, delimiter=",", ndmin=2)
    our_pred = np.loadtxt(pred)
    same_count = ours.shape[0] == len(ir.X_thresholds_)
    if same_count:
        dx = float(np.max(np.abs(ours[:, 0] - ir.X_thresholds_)))
        dy = float(np.max(np.abs(ours[:, 1] - ir.y_thresholds_)))
    else:
        dx = dy = float("inf")
    dp = float(np.max(np.abs(our_pred - sk_pred)))

    sk, us = min(sk_times), min(our_times)
    print("sklearn %s, n=%d%s%s" % (sklearn.__version__, args.n, " (rounded to 0.01)" if args.rounded else "",
                                     " (weighted)" if args.weighted else ""))
    print("thresholds: sklearn=%d ours=%d" % (len(ir.X_thresholds_), ours.shape[0]))
    print("max_abs_diff_x_thresholds=%.3g" % dx)
    print("max_abs_diff_y_thresholds=%.3g" % dy)
    print("max_abs_diff_predictions=%.3g" % dp)
    print("sklearn_fit_predict_seconds=%.4f" % sk)
    print("clm_fit_predict_seconds=%.4f" % us)
    print("clm_fit_predict_seconds_first_run=%.4f" % our_first)
    print("sklearn_first_run_seconds=%.4f" % sk_times[0])
    print("speedup=%.1fx" % (sk / us if us > 0 else float("inf")))
    ok = same_count and max(dx, dy, dp) <= 1e-9
    print("results_agree=%s" % ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
