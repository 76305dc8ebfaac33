#include "lib/calibration/platt.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/calibration/ref_data.h"

namespace clm::calibration {
namespace {

using testing::LoadRef;

class PlattVsSklearn : public ::testing::TestWithParam<std::string> {};

TEST_P(PlattVsSklearn, SameParametersAndPredictions) {
  const auto ref = LoadRef("platt_" + GetParam());
  ASSERT_EQ(ref.sklearn_version, "1.2.1");
  const std::vector<double> f = ref.Column("train", 0);
  const std::vector<double> y = ref.Column("train", 1);
  const std::vector<double> w = ref.Column("train", 2);
  absl::StatusOr<PlattParams> p = FitPlatt(f, y, w);
  ASSERT_TRUE(p.ok()) << p.status();
  const double a = ref.sections.at("params")[0][0];
  const double b = ref.sections.at("params")[0][1];
  EXPECT_NEAR(p->a, a, 1e-4);
  EXPECT_NEAR(p->b, b, 1e-4);
  const std::vector<double> q = ref.Column("predict", 0);
  const std::vector<double> pr = ref.Column("predict", 1);
  for (size_t i = 0; i < q.size(); ++i) EXPECT_NEAR(ApplyPlatt(p->a, p->b, q[i]), pr[i], 1e-4) << "at " << q[i];
}

INSTANTIATE_TEST_SUITE_P(Cases, PlattVsSklearn,
                         ::testing::Values("random_1000", "random_1000_weighted", "overconfident_60", "separable"));

// Platt's objective, sum_i [t_i z_i + log(1 + exp(-z_i))] with z_i = a c_i + b and the smoothed targets, in
// long double (64-bit mantissa): the difference of two values near the optimum is then exact to ~1e-18.
long double PlattObjective(long double a, long double b, const std::vector<double>& c, const std::vector<double>& y) {
  long double wins = 0, losses = 0;
  for (double v : y) (v == 1.0 ? wins : losses) += 1;
  const long double hi = (wins + 1) / (wins + 2);
  const long double lo = 1 / (losses + 2);
  long double f = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    const long double z = a * c[i] + b;
    const long double t = y[i] == 1.0 ? hi : lo;
    f += t * z + (z > 0 ? std::log1p(std::exp(-z)) : -z + std::log1p(std::exp(z)));
  }
  return f;
}

// On separable data sklearn's BFGS stops while its objective is still measurably above the minimum
// (7.5e-12 relative on the six points of platt_separable.txt). CLM's Newton solve is compared with the
// true optimum instead: a 60-digit Newton solve of the same objective (gen_sklearn_refs.py).
class PlattOnSeparableData : public ::testing::TestWithParam<std::string> {};

TEST_P(PlattOnSeparableData, ReachesTheTrueOptimumAndBeatsSklearn) {
  const auto ref = LoadRef("platt_optimum_" + GetParam());
  const std::vector<double> c = ref.Column("train", 0);
  const std::vector<double> y = ref.Column("train", 1);
  double last_loss = -1.0;
  for (size_t i = 0; i < c.size(); ++i) {
    if (y[i] == 0.0) last_loss = std::max(last_loss, c[i]);
  }
  for (size_t i = 0; i < c.size(); ++i) {
    if (y[i] == 1.0) {
      ASSERT_GT(c[i], last_loss) << "not separable";
    }
  }
  const double a_opt = ref.sections.at("optimum")[0][0];
  const double b_opt = ref.sections.at("optimum")[0][1];
  const double f_opt = ref.sections.at("optimum")[0][2];
  const double sklearn_excess = ref.sections.at("sklearn")[0][2];

  absl::StatusOr<PlattParams> p = FitPlatt(c, y);
  ASSERT_TRUE(p.ok()) << p.status();
  // The reference's own objective, evaluated here, is the 60-digit value to long double precision.
  const long double at_opt = PlattObjective(a_opt, b_opt, c, y);
  EXPECT_NEAR(static_cast<double>(at_opt), f_opt, 1e-15 * f_opt);
  const long double excess = PlattObjective(p->a, p->b, c, y) - at_opt;
  std::cout << GetParam() << ": CLM objective excess " << static_cast<double>(excess) << ", sklearn's "
            << sklearn_excess << " (optimum " << f_opt << ")\n";
  EXPECT_LE(excess, 1e-15L * f_opt) << "CLM stopped short of the optimum";
  EXPECT_LT(excess, sklearn_excess) << "CLM's objective is not below sklearn's";
  EXPECT_NEAR(p->a, a_opt, 1e-9 * std::fabs(a_opt));
  EXPECT_NEAR(p->b, b_opt, 1e-9 * std::fabs(b_opt));
}

INSTANTIATE_TEST_SUITE_P(Cases, PlattOnSeparableData, ::testing::Values("separable", "separable_200"));

TEST(Platt, ApplyIsStableForLargeArguments) {
  EXPECT_DOUBLE_EQ(ApplyPlatt(-1000.0, 0.0, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(ApplyPlatt(1000.0, 0.0, 1.0), 0.0);
  EXPECT_DOUBLE_EQ(ApplyPlatt(0.0, 0.0, 0.3), 0.5);
}

TEST(Platt, RejectsBadInput) {
  EXPECT_EQ(FitPlatt({}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FitPlatt({0.5}, {2.0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FitPlatt({0.5, 0.6}, {1.0}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clm::calibration
