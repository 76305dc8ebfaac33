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

platt_optimum_*.txt hold no sklearn figure but the true optimum of Platt's objective, found by Newton's
method in 60-digit decimal arithmetic (Python's decimal module), beside sklearn's own fit for comparison.
"""
import decimal
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


def platt_objective(a, b, f, t, w):
    """Platt's objective sum_i w_i [t_i z_i + log(1 + exp(-z_i))], z_i = a f_i + b, in Decimal."""
    total = decimal.Decimal(0)
    for fi, ti, wi in zip(f, t, w):
        z = a * fi + b
        total += wi * (ti * z + (1 + (-z).exp()).ln())
    return total


def platt_optimum_case(name, f, y):
    """sklearn's fit and the exact optimum of the objective it minimises (labels 0 and 1, unit weights)."""
    f = np.asarray(f, dtype=float)
    y = np.asarray(y, dtype=float)
    a_sk, b_sk = _sigmoid_calibration(f, y)
    D = decimal.Decimal
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        fd = [D(float(v)) for v in f]  # the doubles exactly
        n1 = D(int(y.sum()))
        n0 = D(len(y)) - n1
        hi, lo = (n1 + 1) / (n1 + 2), 1 / (n0 + 2)
        t = [hi if v == 1 else lo for v in y]
        w = [D(1)] * len(fd)
        a, b = D(0), ((n0 + 1) / (n1 + 1)).ln()
        for _ in range(200):
            g1 = g2 = h11 = h22 = h21 = D(0)
            for fi, ti in zip(fd, t):
                p = 1 / (1 + (a * fi + b).exp())
                d2 = p * (1 - p)
                h11 += fi * fi * d2
                h22 += d2
                h21 += fi * d2
                g1 += fi * (ti - p)
                g2 += ti - p
            det = h11 * h22 - h21 * h21
            da = -(h22 * g1 - h21 * g2) / det
            db = -(-h21 * g1 + h11 * g2) / det
            a, b = a + da, b + db
            if abs(da) < D("1e-45") and abs(db) < D("1e-45"):
                break
        else:
            raise RuntimeError("Newton did not converge for " + name)
        f_opt = platt_objective(a, b, fd, t, w)
        f_sk = platt_objective(D(float(a_sk)), D(float(b_sk)), fd, t, w)
    write("platt_optimum_" + name, [
        ("train", list(zip(f, y, np.ones_like(f)))),
        # a, b and the objective at the optimum; the objective's excess at sklearn's a, b (from the same
        # 60-digit evaluation, so it is exact even where it is far below a double's resolution of f).
        ("optimum", [(a, b, f_opt)]),
        ("sklearn", [(a_sk, b_sk, f_sk - f_opt)]),
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
        ("values", [(brier_score_loss(ym, pm), log_loss(ym, pm, labels=[0, 1]))]),  # eps="auto"
    ])

    # Log loss at the clipping edges, with the default eps="auto" (the float64 epsilon): every prediction
    # with both labels, each row's own loss, and the mean over all rows.
    eps = np.finfo(np.float64).eps
    # (Subnormal predictions clip like 1e-300; they are left out because the tests read with std::stod.)
    edges = [0.0, 1.0, 1e-300, 1e-17, eps / 2, eps, 2 * eps, 1e-15, 1e-9, 0.5, 1 - 1e-9,
             1 - 1e-15, 1 - 2 * eps, 1 - eps, 1 - eps / 2, np.nextafter(1.0, 0.0), 0.3, 0.7]
    pe = np.array([p for p in edges for _ in (0, 1)], dtype=float)
    ye = np.array([y for _ in edges for y in (0.0, 1.0)])
    write("log_loss_edges", [
        ("train", [(p, y, log_loss([y], [p], labels=[0, 1])) for p, y in zip(pe, ye)]),
        ("values", [(log_loss(ye, pe, labels=[0, 1]),)]),
    ])

    # Platt on separable data: sklearn's BFGS stops early; CLM is compared with the true optimum.
    platt_optimum_case("separable", [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], [0, 0, 0, 1, 1, 1])
    fsep = np.sort(rng.random(200))
    platt_optimum_case("separable_200", fsep, (fsep > 0.5).astype(float))


if __name__ == "__main__":
    main()
