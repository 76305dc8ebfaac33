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
  for (size_t i = 0; i < q.size(); ++i) {
    EXPECT_NEAR(InterpolateIsotonic(fit->x.data(), fit->y.data(), fit->x.size(), q[i]), p[i], 1e-9)
        << "at " << q[i];
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

TEST(Isotonic, RadixAndComparisonSortAgree) {
  // 3000 points take the radix path; fitting any 2000 of them takes the comparison path. Fit the same
  // 2000 points both ways by padding with zero-weight points (dropped before sorting).
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> x, y, w;
  for (int i = 0; i < 2000; ++i) {
    x.push_back(std::round(u(rng) * 300) / 300);
    y.push_back(u(rng) < x.back() ? 1.0 : 0.0);
    w.push_back(1.0);
  }
  auto small = FitIsotonic(x, y);
  for (int i = 0; i < 1000; ++i) {
    x.push_back(u(rng));
    y.push_back(1.0);
    w.push_back(0.0);
  }
  auto padded = FitIsotonic(x, y, w);
  ASSERT_TRUE(small.ok() && padded.ok());
  EXPECT_EQ(small->x, padded->x);
  EXPECT_EQ(small->y, padded->y);
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

}  // namespace
}  // namespace clm::calibration
