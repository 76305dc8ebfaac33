#include "lib/calibration/isotonic.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/calibration/ref_data.h"

namespace clm::calibration {
namespace {

using testing::LoadRef;

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
