#!/usr/bin/python3
"""Writes the reference values venn_abers_test.cc compares FitVennAbers against.

Run with Debian's interpreter and python3-sklearn 1.2.1 (not a pyenv python3):
    /usr/bin/python3 tests/calibration/gen_venn_abers_refs.py
It rewrites tests/calibration/data/venn_abers_*.txt. Every case comes from a fixed seed, so re-running it on
the same sklearn gives the same files; the files are committed so the C++ tests need no Python.

The reference is the definition itself, with no cleverness to share bugs with the C++ code: for a query
confidence c, p0 is what IsotonicRegression(increasing=True, y_min=0, y_max=1, out_of_bounds="clip"), fitted
on the calibration points plus (c, 0), predicts at c; p1 the same with (c, 1); probability = p1 / (1 - p0 + p1).

File format (as gen_sklearn_refs.py, read by ref_data.h; doubles printed with repr so they round-trip):
    sklearn <version>
    train <n>            then n lines: confidence label weight (weight always 1)
    predict <m>          then m lines: query p0 p1 probability
"""
import os
import sys

import numpy as np
import sklearn
from sklearn.isotonic import IsotonicRegression

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


def isotonic_at(x, y, c, label):
    ir = IsotonicRegression(increasing=True, y_min=0, y_max=1, out_of_bounds="clip")
    ir.fit(np.append(x, c), np.append(y, label))
    return float(ir.predict(np.array([c]))[0])


def queries(x, rng):
    """Every distinct confidence, every midpoint, one below and one above, 0, 1, and a few random values."""
    xs = np.unique(x)
    mids = (xs[1:] + xs[:-1]) / 2 if len(xs) > 1 else np.array([])
    span = max(xs[-1] - xs[0], 0.1)
    ends = np.array([xs[0] - 0.25 * span, xs[-1] + 0.25 * span, 0.0, 1.0])
    return np.concatenate([xs, mids, ends, rng.uniform(xs[0] - 0.1, xs[-1] + 0.1, 20)])


def case(name, x, y, rng):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    rows = []
    for c in queries(x, rng):
        p0 = isotonic_at(x, y, c, 0.0)
        p1 = isotonic_at(x, y, c, 1.0)
        rows.append((c, p0, p1, p1 / (1.0 - p0 + p1)))
    write("venn_abers_" + name, [
        ("train", list(zip(x, y, np.ones_like(x)))),
        ("predict", rows),
    ])


def main():
    if sklearn.__version__ != "1.2.1":
        print("warning: references are meant to come from sklearn 1.2.1, this is", sklearn.__version__,
              file=sys.stderr)
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20260214)

    x = rng.random(300)
    case("random_300", x, (rng.random(300) < 0.1 + 0.8 * x).astype(float), rng)
    xr = np.round(rng.random(300), 2)  # many ties, like an engine that rounds its confidences
    case("rounded_300", xr, (rng.random(300) < xr ** 1.5).astype(float), rng)
    case("all_wins", np.round(rng.uniform(0.3, 0.9, 40), 3), np.ones(40), rng)
    case("all_losses", np.round(rng.uniform(0.3, 0.9, 40), 3), np.zeros(40), rng)
    case("single_point", [0.62], [1.0], rng)
    case("two_points", [0.4, 0.7], [1.0, 0.0], rng)
    xh = np.round(rng.uniform(0.2, 0.9, 120), 2)  # NEUTRAL_AS_HALF: labels 0, 0.5 and 1, with ties
    case("neutral_half", xh, rng.choice([0.0, 0.5, 1.0], 120, p=[0.4, 0.2, 0.4]), rng)
    xo = rng.uniform(0.5, 0.8, 200)  # over-confident engine: wins far below its confidence
    case("overconfident_200", xo, (rng.random(200) < 0.38).astype(float), rng)


if __name__ == "__main__":
    main()
