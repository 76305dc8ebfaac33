#!/usr/bin/python3
"""Writes the scikit-learn reference values the calibration tests compare against.

Run with Debian's interpreter and python3-sklearn 1.2.1 (apt-get install -y python3-sklearn python3-numpy):
    /usr/bin/python3 tests/calibration/gen_sklearn_refs.py
It rewrites tests/calibration/data/*.txt. Every case is generated from a fixed seed, so re-running it on the
same sklearn gives the same files; the files are committed so the C++ tests need no Python.

File format (whitespace separated, doubles printed with repr so they round-trip exactly):
    sklearn <version>
    train <n>            then n lines: x y w
    <section> <n>        then n lines of numbers
"""
import os
import sys

import numpy as np
import sklearn
from sklearn.calibration import _sigmoid_calibration
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, log_loss
from scipy.special import expit

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def fmt(v):
    return repr(float(v))


def write(name, sections):
    path = os.path.join(OUT, name + ".txt")
    with open(path, "w") as f:
        f.write("sklearn %s\n" % sklearn.__version__)
        for title, rows in sections:
            f.write("%s %d\n" % (title, len(rows)))
            for row in rows:
                f.write(" ".join(fmt(v) for v in row) + "\n")
    print("wrote", path)


def queries(x):
    grid = np.linspace(-0.1, 1.1, 121)
    xs = np.unique(np.asarray(x, dtype=float))
    mids = (xs[1:] + xs[:-1]) / 2 if len(xs) > 1 else np.array([])
    return np.concatenate([grid, xs, mids])


def isotonic_case(name, x, y, w=None):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ir = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
    ir.fit(x, y, sample_weight=w)
    q = queries(x)
    p = ir.predict(q)
    wcol = np.ones_like(x) if w is None else np.asarray(w, dtype=float)
    write("isotonic_" + name, [
        ("train", list(zip(x, y, wcol))),
        ("thresholds", list(zip(ir.X_thresholds_, ir.y_thresholds_))),
        ("predict", list(zip(q, p))),
    ])


def platt_case(name, f, y, w=None):
    f = np.asarray(f, dtype=float)
    y = np.asarray(y, dtype=float)
    a, b = _sigmoid_calibration(f, y, sample_weight=None if w is None else np.asarray(w, dtype=float))
    q = np.linspace(0.0, 1.0, 101)
    p = expit(-(a * q + b))
    wcol = np.ones_like(f) if w is None else np.asarray(w, dtype=float)
    write("platt_" + name, [
        ("train", list(zip(f, y, wcol))),
        ("params", [(a, b)]),
        ("predict", list(zip(q, p))),
    ])


def main():
    if sklearn.__version__ != "1.2.1":
        print("warning: references are meant to come from sklearn 1.2.1, this is", sklearn.__version__,
              file=sys.stderr)
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20260209)

    # Isotonic.
    isotonic_case("ties", [0.6, 0.5, 0.6, 0.7, 0.5, 0.6, 0.8, 0.7, 0.5], [1, 0, 0, 1, 1, 0, 1, 0, 0])
    isotonic_case("constant_input", [0.55] * 7, [1, 0, 1, 1, 0, 1, 0])
    isotonic_case("all_wins", [0.2, 0.4, 0.6, 0.8, 0.9], [1, 1, 1, 1, 1])
    isotonic_case("all_losses", [0.3, 0.5, 0.7, 0.95], [0, 0, 0, 0])
    isotonic_case("two_points", [0.4, 0.7], [1, 0])
    isotonic_case("two_points_increasing", [0.4, 0.7], [0, 1])
    isotonic_case("weights", [0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
                  [0, 1, 0, 1, 0, 0, 1, 1], [1.0, 2.5, 0.5, 3.0, 0.0, 1.5, 0.25, 4.0])
    isotonic_case("decreasing", [0.1, 0.3, 0.5, 0.7, 0.9], [1, 1, 0, 0, 0])
    isotonic_case("neutral_half", [0.2, 0.4, 0.4, 0.6, 0.8, 0.9], [0, 0.5, 1, 0.5, 0, 1])
    # Confidences closer than 1e-15 are one value for sklearn (_make_unique uses finfo.resolution).
    isotonic_case("near_duplicates", [0.5, 0.5 + 4e-16, 0.5 + 8e-16, 0.5 + 2e-15, 0.7], [1, 0, 1, 0, 1])

    x = rng.random(1000)
    y = (rng.random(1000) < 0.2 + 0.6 * x).astype(float)
    isotonic_case("random_1000", x, y)
    xr = np.round(rng.random(1000), 2)  # heavy ties, like an engine that rounds its confidences
    yr = (rng.random(1000) < xr ** 1.5).astype(float)
    isotonic_case("random_1000_rounded", xr, yr)
    wr = rng.exponential(1.0, 1000)
    isotonic_case("random_1000_weighted", xr, yr, wr)

    # Platt.
    f = rng.random(1000)
    yp = (rng.random(1000) < expit(4 * (f - 0.55))).astype(float)
    platt_case("random_1000", f, yp)
    platt_case("random_1000_weighted", f, yp, rng.exponential(1.0, 1000))
    fs = np.round(rng.uniform(0.4, 0.9, 60), 3)
    ys = (rng.random(60) < 0.38).astype(float)  # over-confident engine: wins far below its confidence
    platt_case("overconfident_60", fs, ys)
    platt_case("separable", [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], [0, 0, 0, 1, 1, 1])

    # Metrics.
    pm = rng.random(200)
    ym = (rng.random(200) < pm).astype(float)
    pm[0], pm[1] = 0.0, 1.0  # exercise the log-loss clipping
    ym[0], ym[1] = 1.0, 0.0
    write("metrics_200", [
        ("train", list(zip(pm, ym, np.ones_like(pm)))),
        ("values", [(brier_score_loss(ym, pm), log_loss(ym, pm, eps=1e-15, labels=[0, 1]))]),
    ])


if __name__ == "__main__":
    main()
