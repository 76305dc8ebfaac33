#include "lib/calibration/isotonic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/calibration/ref_data.h"

namespace clm::calibration {
namespace {

using testing::LoadRef;

// scikit-learn 1.2.1's fit written out step by step over whole arrays, the way its Python and Cython code do
// it: drop zero weights, np.lexsort((y, X)), _make_unique (always dividing), the in-place contiguous PAV,
// clip to [0, 1], then keep the ends and every point whose value differs from a neighbour's.
IsotonicThresholds ReferenceFit(const std::vector<double>& x, const std::vector<double>& y,
                                const std::vector<double>& w) {
  std::vector<size_t> order;
  for (size_t i = 0; i < x.size(); ++i) {
    if (w.empty() || w[i] > 0.0) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (x[a] != x[b]) return x[a] < x[b];
    if (y[a] != y[b]) return y[a] < y[b];
    return a < b;
  });
  std::vector<double> ux, uy, uw;
  double cx = x[order[0]], cy = 0.0, cw = 0.0;
  for (size_t i : order) {
    const double wi = w.empty() ? 1.0 : w[i];
    if (x[i] - cx >= 1e-15) {
      ux.push_back(cx);
      uy.push_back(cy / cw);
      uw.push_back(cw);
      cx = x[i];
      cy = 0.0;
      cw = 0.0;
    }
    cw += wi;
    cy += y[i] * wi;
  }
  ux.push_back(cx);
  uy.push_back(cy / cw);
  uw.push_back(cw);

  const ptrdiff_t n = static_cast<ptrdiff_t>(uy.size());
  std::vector<ptrdiff_t> target(n);
  std::iota(target.begin(), target.end(), 0);
  ptrdiff_t i = 0;
  while (i < n) {
    ptrdiff_t k = target[i] + 1;
    if (k == n) break;
    if (uy[i] < uy[k]) {
      i = k;
      continue;
    }
    double sum_wy = uw[i] * uy[i];
    double sum_w = uw[i];
    while (true) {
      const double prev_y = uy[k];
      sum_wy += uw[k] * uy[k];
      sum_w += uw[k];
      k = target[k] + 1;
      if (k == n || prev_y < uy[k]) {
        uy[i] = sum_wy / sum_w;
        uw[i] = sum_w;
        target[i] = k - 1;
        target[k - 1] = i;
        if (i > 0) i = target[i - 1];
        break;
      }
    }
  }
  for (i = 0; i < n;) {  // expand each block's value over its points
    const ptrdiff_t end = target[i] + 1;
    for (ptrdiff_t j = i; j < end; ++j) uy[j] = std::clamp(uy[i], 0.0, 1.0);
    i = end;
  }
  IsotonicThresholds out;
  for (ptrdiff_t j = 0; j < n; ++j) {
    if (j == 0 || j == n - 1 || uy[j] != uy[j - 1] || uy[j] != uy[j + 1]) {
      out.x.push_back(ux[j]);
      out.y.push_back(uy[j]);
    }
  }
  return out;
}

bool SameBits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

class IsotonicVsSklearn : public ::testing::TestWithParam<std::string> {};

TEST_P(IsotonicVsSklearn, SameThresholdsAndPredictions) {
  const auto ref = LoadRef("isotonic_" + GetParam());
  ASSERT_EQ(ref.sklearn_version, "1.2.1");
  const std::vector<double> x = ref.Column("train", 0);
  const std::vector<double> y = ref.Column("train", 1);
  const std::vector<double> w = ref.Column("train", 2);
  absl::StatusOr<IsotonicThresholds> fit = FitIsotonic(x, y, w);
  ASSERT_TRUE(fit.ok()) << fit.status();

  const std::vector<double> rx = ref.Column("thresholds", 0);
  const std::vector<double> ry = ref.Column("thresholds", 1);
  ASSERT_EQ(fit->x.size(), rx.size());
  for (size_t i = 0; i < rx.size(); ++i) {
    EXPECT_NEAR(fit->x[i], rx[i], 1e-9) << "threshold " << i;
    EXPECT_NEAR(fit->y[i], ry[i], 1e-9) << "threshold " << i;
  }
  const std::vector<double> q = ref.Column("predict", 0);
  const std::vector<double> p = ref.Column("predict", 1);
  const IsotonicPredictor predictor(fit->x, fit->y);
  for (size_t i = 0; i < q.size(); ++i) {
    const double v = InterpolateIsotonic(fit->x.data(), fit->y.data(), fit->x.size(), q[i]);
    EXPECT_NEAR(v, p[i], 1e-9) << "at " << q[i];
    EXPECT_EQ(predictor(q[i]), v) << "at " << q[i];
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, IsotonicVsSklearn,
                         ::testing::Values("ties", "constant_input", "all_wins", "all_losses", "two_points",
                                           "two_points_increasing", "weights", "decreasing", "neutral_half",
                                           "near_duplicates", "random_1000", "random_1000_rounded",
                                           "random_1000_weighted"));

TEST(Isotonic, UnitWeightsEqualNoWeights) {
  const std::vector<double> x = {0.3, 0.1, 0.2, 0.2, 0.9};
  const std::vector<double> y = {1, 0, 1, 0, 1};
  auto a = FitIsotonic(x, y);
  auto b = FitIsotonic(x, y, std::vector<double>(5, 1.0));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->x, b->x);
  EXPECT_EQ(a->y, b->y);
}

TEST(Isotonic, FitterReuseGivesTheSameResult) {
  // The radix-sort path (>= 2048 points) and buffer reuse across fits.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> x(5000), y(5000);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = u(rng);
    y[i] = u(rng) < x[i] ? 1.0 : 0.0;
  }
  IsotonicFitter fitter;
  IsotonicThresholds first, small, again;
  ASSERT_TRUE(fitter.Fit(x, y, {}, &first).ok());
  ASSERT_TRUE(fitter.Fit({0.2, 0.1}, {1.0, 0.0}, {}, &small).ok());
  ASSERT_TRUE(fitter.Fit(x, y, {}, &again).ok());
  EXPECT_EQ(first.x, again.x);
  EXPECT_EQ(first.y, again.y);
  EXPECT_EQ(small.x, (std::vector<double>{0.1, 0.2}));
  for (size_t i = 1; i < first.x.size(); ++i) {
    EXPECT_LT(first.x[i - 1], first.x[i]);
    EXPECT_LE(first.y[i - 1], first.y[i]);
  }
}

TEST(Isotonic, PackedPathAgreesWithGeneralPath) {
  // Unit weights, 0/1 labels and confidences in [0, 1] take the packed path; weights of 2 take the general
  // path. Doubling every weight leaves the fit unchanged (and its sums exact), so both must agree exactly.
  for (int n : {1500, 50000}) {
    std::mt19937_64 rng(11 + n);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<double> x, y;
    for (int i = 0; i < n; ++i) {
      x.push_back(i % 2 ? std::round(u(rng) * 300) / 300 : u(rng));  // ties and distinct values
      y.push_back(u(rng) < x.back() ? 1.0 : 0.0);
    }
    auto packed = FitIsotonic(x, y);
    auto general = FitIsotonic(x, y, std::vector<double>(x.size(), 2.0));
    ASSERT_TRUE(packed.ok() && general.ok());
    EXPECT_EQ(packed->x, general->x);
    EXPECT_EQ(packed->y, general->y);
    EXPECT_GT(packed->x.size(), 10u);
  }
}

TEST(Isotonic, SameBitsAsSklearnsAlgorithmOnRandomData) {
  // Against ReferenceFit, bit for bit, over the shapes that exercise different paths: the packed path (0/1
  // labels, unit weights, spread-out or tied confidences), the general path (fractional labels, weights with
  // zeros, negative confidences), a packed start that turns general part-way, near-duplicates merged by the
  // 1e-15 rule, and long decreasing runs that make the pooling back up over many blocks.
  std::mt19937_64 rng(20260209);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  IsotonicFitter fitter;
  for (int trial = 0; trial < 240; ++trial) {
    const int shape = trial % 8;
    const size_t n = 1 + static_cast<size_t>(u(rng) * (trial < 200 ? 3000 : 40000));
    std::vector<double> x(n), y(n), w;
    for (size_t i = 0; i < n; ++i) {
      double c = u(rng);
      if (shape == 1) c = std::round(c * 50.0) / 50.0;
      if (shape == 3) c = c * 4.0 - 2.0;
      if (shape == 5) c = std::round(c * 20.0) / 20.0 + (i % 3) * 3e-16;  // merged into the first of a run
      if (shape == 6) c = static_cast<double>(n - i) / n;                 // labels fall as confidence rises
      x[i] = c;
      const double p = shape == 6 ? 0.5 + 0.3 * (static_cast<double>(i % 97) / 97.0 - 0.5) : c * c;
      y[i] = u(rng) < p ? 1.0 : 0.0;
      if (shape == 2) y[i] = std::round(u(rng) * 10.0) / 10.0;
      if (shape == 7 && i > n / 2) y[i] = 0.25;
    }
    if (shape == 3 || shape == 4) {
      for (size_t i = 0; i < n; ++i) w.push_back(i % 7 == 0 ? 0.0 : (shape == 4 ? 1.0 : 0.5 + u(rng)));
      w[n / 2] = 1.0;  // at least one positive weight
    }
    IsotonicThresholds got;
    ASSERT_TRUE(fitter.Fit(x, y, w, &got).ok()) << "trial " << trial;
    const IsotonicThresholds want = ReferenceFit(x, y, w);
    ASSERT_TRUE(SameBits(got.x, want.x)) << "trial " << trial << " shape " << shape << " n " << n;
    ASSERT_TRUE(SameBits(got.y, want.y)) << "trial " << trial << " shape " << shape << " n " << n;
  }
}

TEST(Isotonic, ZeroWeightPointsAreStillValidated) {
  auto nan_x = FitIsotonic({0.1, std::nan(""), 0.3}, {1.0, 0.0, 1.0}, {1.0, 0.0, 1.0});
  EXPECT_EQ(nan_x.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(nan_x.status().message().find("x[1]"), absl::string_view::npos) << nan_x.status();
  auto bad_label = FitIsotonic({0.1, 0.2, 0.3}, {1.0, 0.0, 2.0}, {1.0, 1.0, 0.0});
  EXPECT_EQ(bad_label.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_label.status().message().find("y[2]"), absl::string_view::npos) << bad_label.status();
}

TEST(IsotonicPredictor, SameAsBinarySearchEverywhere) {
  // Uneven thresholds (dense clusters and wide gaps) so cells hold zero, one or many thresholds.
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> x = {0.1, 0.1000001, 0.1000002, 0.3};
  for (int i = 0; i < 400; ++i) x.push_back(0.5 + 0.001 * i + 1e-5 * u(rng));
  x.push_back(0.97);
  std::vector<double> y;
  for (size_t i = 0; i < x.size(); ++i) y.push_back(static_cast<double>(i) / x.size());
  const IsotonicPredictor predict(x, y);
  for (int i = 0; i < 200000; ++i) {
    const double v = -0.05 + 1.1 * u(rng);
    ASSERT_EQ(predict(v), InterpolateIsotonic(x.data(), y.data(), x.size(), v)) << v;
  }
  for (double v : x) ASSERT_EQ(predict(v), InterpolateIsotonic(x.data(), y.data(), x.size(), v)) << v;
  const IsotonicPredictor two({0.2, 0.4}, {0.1, 0.5});
  EXPECT_NEAR(two(0.3), 0.3, 1e-15);
  const IsotonicPredictor one({0.2}, {0.7});
  EXPECT_EQ(one(0.9), 0.7);
}

TEST(IsotonicPredictor, BatchPredictSameBitsAsOnePointAtATime) {
  // Queries on and between thresholds, outside the range, NaN, a segment of infinite slope (its two ends one
  // subnormal apart), thresholds valued -0.0 (returned as themselves, where the formula would give +0.0), for
  // maps that do and do not use the cell table. Compared bit for bit.
  const std::vector<std::vector<double>> xs = {{0.0, 5e-324, 0.25, 0.5, 0.75, 1.0},
                                               {0.1, 0.3, 0.3000000001, 0.9},
                                               {0.1, 0.2, 0.3, 0.4},
                                               {0.2, 0.4},
                                               {0.6}};
  const std::vector<std::vector<double>> ys = {
      {0.0, 0.5, 0.5, 0.6, 0.6, 1.0}, {0.0, 0.2, 0.7, 1.0}, {-0.0, -0.0, -0.0, 1.0}, {0.1, 0.5}, {0.7}};
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(-0.1, 1.1);
  for (size_t m = 0; m < xs.size(); ++m) {
    std::vector<double> q = {std::nan(""), -1.0, 2.0, 0.0, 5e-324, 1e-320};
    q.insert(q.end(), xs[m].begin(), xs[m].end());
    for (int i = 0; i < 5000; ++i) q.push_back(u(rng));
    const IsotonicPredictor predict(xs[m], ys[m]);
    std::vector<double> batch(q.size());
    predict.Predict(q, absl::MakeSpan(batch));
    for (size_t i = 0; i < q.size(); ++i) {
      const double one = predict(q[i]);
      const double reference = InterpolateIsotonic(xs[m].data(), ys[m].data(), xs[m].size(), q[i]);
      ASSERT_EQ(std::memcmp(&batch[i], &one, sizeof one), 0) << "map " << m << " at " << q[i];
      if (std::isnan(q[i])) {
        EXPECT_TRUE(std::isnan(one));
      } else {
        ASSERT_EQ(std::memcmp(&one, &reference, sizeof one), 0) << "map " << m << " at " << q[i];
      }
    }
  }
}

TEST(Isotonic, RejectsBadInput) {
  EXPECT_EQ(FitIsotonic({}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FitIsotonic({0.1, 0.2}, {1.0}).status().code(), absl::StatusCode::kInvalidArgument);
  auto bad_label = FitIsotonic({0.1, 0.2}, {1.0, 1.5});
  EXPECT_EQ(bad_label.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_label.status().message().find("y[1]"), absl::string_view::npos);
  EXPECT_EQ(FitIsotonic({0.1, std::nan("")}, {1.0, 0.0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FitIsotonic({0.1, 0.2}, {1.0, 0.0}, {0.0, 0.0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FitIsotonic({0.1, 0.2}, {1.0, 0.0}, {1.0, -1.0}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Isotonic, ExtremeAndSkewedRanges) {
  // Ranges whose bucket scale overflows, and nearly all points in one bucket: still sorted correctly.
  auto wide = FitIsotonic({1e308, -1e308, 0.0, 5.0}, {1, 0, 0, 1});
  ASSERT_TRUE(wide.ok());
  EXPECT_EQ(wide->x, (std::vector<double>{-1e308, 0.0, 5.0, 1e308}));
  auto tiny = FitIsotonic({5e-324, 0.0, 1e-323}, {1, 0, 1});
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(tiny->x.front(), 0.0);
  std::vector<double> x, y;
  for (int i = 0; i < 3000; ++i) {
    x.push_back(1e-9 * ((i * 7919) % 3000));
    y.push_back(i % 3 == 0 ? 1.0 : 0.0);
  }
  x.push_back(1.0);
  y.push_back(1.0);
  auto skewed = FitIsotonic(x, y);
  ASSERT_TRUE(skewed.ok());
  EXPECT_EQ(skewed->x.back(), 1.0);
  for (size_t i = 1; i < skewed->x.size(); ++i) EXPECT_LT(skewed->x[i - 1], skewed->x[i]);
}

}  // namespace
}  // namespace clm::calibration
