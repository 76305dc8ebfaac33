#include "lib/calibration/metrics.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "tests/calibration/ref_data.h"

namespace clm::calibration {
namespace {

const std::vector<double> kPredicted = {0.2, 0.8, 0.6, 0.4};
const std::vector<double> kLabel = {0.0, 1.0, 0.0, 1.0};

TEST(Metrics, MseAndLogLossByHand) {
  EXPECT_NEAR(Mse(kPredicted, kLabel), (0.04 + 0.04 + 0.36 + 0.36) / 4, 1e-15);
  EXPECT_NEAR(LogLoss(kPredicted, kLabel), -(2 * std::log(0.8) + 2 * std::log(0.4)) / 4, 1e-15);
}

TEST(Metrics, EceAndMceByHand) {
  // Two bins: [0, 0.5) holds 0.2 (loss) and 0.4 (win): mean 0.3, observed 0.5; [0.5, 1] holds 0.6 (loss) and
  // 0.8 (win): mean 0.7, observed 0.5. ECE = 0.5 * 0.2 + 0.5 * 0.2.
  const clm::v1::Metrics two = ComputeMetrics(kPredicted, kLabel, 2);
  EXPECT_EQ(two.count(), 4u);
  EXPECT_NEAR(two.ece(), 0.2, 1e-12);
  EXPECT_NEAR(two.mce(), 0.2, 1e-12);
  // Ten bins: each prediction alone; gaps 0.2, 0.6, 0.6, 0.2.
  const clm::v1::Metrics ten = ComputeMetrics(kPredicted, kLabel, 10);
  EXPECT_NEAR(ten.ece(), 0.4, 1e-12);
  EXPECT_NEAR(ten.mce(), 0.6, 1e-12);
  EXPECT_NEAR(ten.mse(), 0.2, 1e-15);
}

TEST(Metrics, PerfectlyCalibratedBinsHaveZeroEce) {
  // 0.25 predicted, one win in four.
  const std::vector<double> p = {0.25, 0.25, 0.25, 0.25};
  const std::vector<double> y = {1, 0, 0, 0};
  EXPECT_NEAR(ComputeMetrics(p, y, 10).ece(), 0.0, 1e-15);
}

TEST(Metrics, AgreesWithSklearnBrierAndLogLoss) {
  const auto ref = testing::LoadRef("metrics_200");
  const auto p = ref.Column("train", 0);
  const auto y = ref.Column("train", 1);
  // p contains exact 0 and 1 on the wrong outcome: the log loss must clip to 1e-15 like sklearn.
  EXPECT_NEAR(Mse(p, y), ref.sections.at("values")[0][0], 1e-12);
  EXPECT_NEAR(LogLoss(p, y), ref.sections.at("values")[0][1], 1e-9);
}

TEST(Metrics, ImprovementPercent) {
  EXPECT_NEAR(ImprovementPct(0.3357, 0.2347), 30.0864, 1e-3);  // the audit report's "+30.1%"
  EXPECT_NEAR(ImprovementPct(0.2, 0.25), -25.0, 1e-12);
  EXPECT_EQ(ImprovementPct(0.0, 0.0), 0.0);
}

TEST(Metrics, BinsCoverTheUnitInterval) {
  EXPECT_EQ(BinIndex(0.0, 10), 0);
  EXPECT_EQ(BinIndex(0.5, 10), 5);
  EXPECT_EQ(BinIndex(0.69999, 10), 6);
  EXPECT_EQ(BinIndex(1.0, 10), 9);
  EXPECT_EQ(BinIndex(0.999, 1), 0);
  const auto bins = ReliabilityBins(kPredicted, kLabel, 5, 2);
  ASSERT_EQ(bins.size(), 5u);
  EXPECT_DOUBLE_EQ(bins[1].lo(), 0.2);
  EXPECT_EQ(bins[1].count(), 1u);
  EXPECT_TRUE(bins[1].thin());
  EXPECT_EQ(bins[0].count(), 0u);
  EXPECT_FALSE(bins[0].thin());
  EXPECT_NEAR(bins[3].gap(), 0.6, 1e-12);  // 0.6 predicted, lost
}

TEST(Metrics, EmptyInputIsZero) {
  const clm::v1::Metrics m = ComputeMetrics({}, {}, 10);
  EXPECT_EQ(m.count(), 0u);
  EXPECT_EQ(m.mse(), 0.0);
}

}  // namespace
}  // namespace clm::calibration
