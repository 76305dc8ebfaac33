#include "lib/calibration/findings.h"

#include <vector>

#include "gtest/gtest.h"
#include "lib/calibration/metrics.h"

namespace clm::calibration {
namespace {

// Adds `count` trades at confidence c, the first `wins` of which won.
void Add(std::vector<double>* p, std::vector<double>* y, double c, int count, int wins) {
  for (int i = 0; i < count; ++i) {
    p->push_back(c);
    y->push_back(i < wins ? 1.0 : 0.0);
  }
}

TEST(Findings, OverConfidentRangeIsStatedInWords) {
  std::vector<double> p, y;
  Add(&p, &y, 0.35, 40, 14);  // calibrated
  Add(&p, &y, 0.45, 40, 18);  // calibrated
  Add(&p, &y, 0.55, 55, 21);  // 38.2% observed
  Add(&p, &y, 0.65, 55, 21);  // 38.2% observed
  Add(&p, &y, 0.75, 40, 30);  // calibrated
  Add(&p, &y, 0.85, 40, 34);  // calibrated
  const auto bins = ReliabilityBins(p, y, 10, 10);
  const auto findings = FindMiscalibration(bins, 0.05);
  ASSERT_EQ(findings.size(), 1u);
  const auto& f = findings[0];
  EXPECT_EQ(f.kind(), clm::v1::Finding::FINDING_OVER_CONFIDENT);
  EXPECT_DOUBLE_EQ(f.lo(), 0.5);
  EXPECT_DOUBLE_EQ(f.hi(), 0.7);
  EXPECT_EQ(f.count(), 110u);
  EXPECT_NEAR(f.observed(), 42.0 / 110.0, 1e-12);
  EXPECT_NEAR(f.mean_predicted(), 0.6, 1e-12);
  EXPECT_NE(f.text().find("predictions 0.50-0.70: over-confident, observed win rate 38.2%"), std::string::npos)
      << f.text();
}

TEST(Findings, UnderConfidentAndSeparateRanges) {
  std::vector<double> p, y;
  Add(&p, &y, 0.25, 20, 10);  // under-confident: 50% observed
  Add(&p, &y, 0.45, 20, 9);   // calibrated: separates the ranges
  Add(&p, &y, 0.65, 20, 6);   // over-confident
  const auto findings = FindMiscalibration(ReliabilityBins(p, y, 10, 10), 0.05);
  ASSERT_EQ(findings.size(), 2u);
  EXPECT_EQ(findings[0].kind(), clm::v1::Finding::FINDING_UNDER_CONFIDENT);
  EXPECT_NE(findings[0].text().find("predictions 0.20-0.30: under-confident"), std::string::npos);
  EXPECT_EQ(findings[1].kind(), clm::v1::Finding::FINDING_OVER_CONFIDENT);
  EXPECT_DOUBLE_EQ(findings[1].lo(), 0.6);
}

TEST(Findings, ThinBinsMakeNoStatementAndSplitRanges) {
  std::vector<double> p, y;
  Add(&p, &y, 0.55, 20, 4);  // over-confident
  Add(&p, &y, 0.65, 3, 0);   // thin: would look over-confident
  Add(&p, &y, 0.75, 20, 8);  // over-confident
  Add(&p, &y, 0.95, 5, 0);   // thin
  const auto findings = FindMiscalibration(ReliabilityBins(p, y, 10, 10), 0.05);
  ASSERT_EQ(findings.size(), 2u);
  EXPECT_DOUBLE_EQ(findings[0].hi(), 0.6);
  EXPECT_DOUBLE_EQ(findings[1].lo(), 0.7);
  EXPECT_DOUBLE_EQ(findings[1].hi(), 0.8);
}

TEST(Findings, WithinToleranceIsSilent) {
  std::vector<double> p, y;
  Add(&p, &y, 0.55, 100, 52);  // gap 0.03
  EXPECT_TRUE(FindMiscalibration(ReliabilityBins(p, y, 10, 10), 0.05).empty());
  EXPECT_EQ(FindMiscalibration(ReliabilityBins(p, y, 10, 10), 0.02).size(), 1u);
}

}  // namespace
}  // namespace clm::calibration
