#include "lib/calibration/metrics.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/types/span.h"

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
  // p contains exact 0 and 1 on the wrong outcome: the log loss must clip as sklearn's default eps="auto" does.
  EXPECT_NEAR(Mse(p, y), ref.sections.at("values")[0][0], 1e-12);
  const double want = ref.sections.at("values")[0][1];
  EXPECT_NEAR(LogLoss(p, y), want, 1e-14 * want);
}

// Every prediction at or next to the clipping edges, each with both labels, against sklearn 1.2.1's
// log_loss(labels=[0, 1]) with its default eps: row by row, and the mean.
TEST(Metrics, LogLossClipsAtTheEdgesExactlyAsSklearn) {
  const auto ref = testing::LoadRef("log_loss_edges");
  ASSERT_EQ(ref.sklearn_version, "1.2.1");
  const auto p = ref.Column("train", 0);
  const auto y = ref.Column("train", 1);
  const auto loss = ref.Column("train", 2);
  ASSERT_EQ(p.size(), 36u);
  for (size_t i = 0; i < p.size(); ++i) {
    const double got = LogLoss(absl::MakeConstSpan(&p[i], 1), absl::MakeConstSpan(&y[i], 1));
    EXPECT_NEAR(got, loss[i], 4e-16 * std::max(1.0, loss[i])) << "p = " << p[i] << ", y = " << y[i];
  }
  // A certain prediction proven wrong costs -log(2.2e-16) = 36.04, not -log(1e-15) = 34.54.
  EXPECT_NEAR(LogLoss(std::vector<double>{0.0}, std::vector<double>{1.0}), 36.04365338911715, 1e-13);
  EXPECT_NEAR(LogLoss(std::vector<double>{1.0}, std::vector<double>{0.0}), 36.04365338911715, 1e-13);
  const double mean = ref.sections.at("values")[0][0];
  EXPECT_NEAR(LogLoss(p, y), mean, 1e-14 * mean);
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

// A confidence exactly at an edge k / bins is in bin k, for every bin count and every edge, although
// floor(c * bins) misses some (0.29 * 100 = 28.999999999999996); the double just below an edge is in the bin
// before it. ReliabilityBins reports the same edges.
TEST(Metrics, AConfidenceAtAnEdgeIsInTheBinItStarts) {
  EXPECT_EQ(BinIndex(0.29, 100), 29);
  EXPECT_EQ(std::floor(0.29 * 100), 28.0);  // what the edges correct
  int wrong = 0;
  for (int bins = 1; bins <= 1000; ++bins) {
    for (int k = 0; k <= bins; ++k) {
      const double edge = static_cast<double>(k) / bins;
      ASSERT_EQ(Edge(k, bins), edge);
      const int want = std::min(k, bins - 1);  // 1.0 belongs to the last bin
      if (BinIndex(edge, bins) != want && ++wrong <= 10) {
        ADD_FAILURE() << "edge " << k << "/" << bins << " = " << edge << " went to bin " << BinIndex(edge, bins);
      }
      if (k > 0 && BinIndex(std::nextafter(edge, 0.0), bins) != k - 1 && ++wrong <= 10) {
        ADD_FAILURE() << "just below edge " << k << "/" << bins << " went to bin "
                      << BinIndex(std::nextafter(edge, 0.0), bins);
      }
    }
  }
  EXPECT_EQ(wrong, 0);

  const std::vector<double> at_edges = {0.29, 0.57, 0.58, 0.99};
  const std::vector<double> labels = {1.0, 0.0, 1.0, 0.0};
  const auto bins = ReliabilityBins(at_edges, labels, 100, 1);
  for (double c : at_edges) {
    const auto& bin = bins[static_cast<size_t>(BinIndex(c, 100))];
    EXPECT_EQ(bin.count(), 1u) << c;
    EXPECT_EQ(bin.lo(), c);
    EXPECT_EQ(bin.mean_predicted(), c);
  }
  EXPECT_EQ(BinIndex(-0.5, 10), 0);
  EXPECT_EQ(BinIndex(std::nan(""), 10), 0);
  EXPECT_EQ(BinIndex(1.5, 10), 9);
}

TEST(Metrics, EmptyInputIsZero) {
  const clm::v1::Metrics m = ComputeMetrics({}, {}, 10);
  EXPECT_EQ(m.count(), 0u);
  EXPECT_EQ(m.mse(), 0.0);
}

}  // namespace
}  // namespace clm::calibration
