#include "lib/calibration/platt.h"

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
