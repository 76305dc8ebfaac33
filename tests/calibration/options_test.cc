#include "lib/calibration/options.h"

#include "gtest/gtest.h"

namespace clm::calibration {
namespace {

TEST(Options, ZeroMeansDefault) {
  absl::StatusOr<ResolvedOptions> r = ResolveOptions(clm::v1::CalibrationOptions());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->method, clm::v1::ISOTONIC);
  EXPECT_EQ(r->folds, 5);
  EXPECT_EQ(r->bins, 10);
  EXPECT_EQ(r->neutral_handling, clm::v1::NEUTRAL_EXCLUDE);
  EXPECT_DOUBLE_EQ(r->tolerance, 0.05);
  EXPECT_EQ(r->min_slice_trades, 200);
  EXPECT_EQ(r->min_labelled_trades, 50);
  EXPECT_EQ(r->bootstrap_resamples, 1000);
  EXPECT_DOUBLE_EQ(r->rebalance_threshold, 0.02);
  EXPECT_EQ(r->ToProto().folds(), 5);
}

TEST(Options, ExplicitValuesAreKept) {
  clm::v1::CalibrationOptions o;
  o.set_method(clm::v1::PLATT);
  o.set_folds(3);
  o.set_bins(20);
  o.set_tolerance(0.1);
  o.set_neutral_handling(clm::v1::NEUTRAL_AS_HALF);
  absl::StatusOr<ResolvedOptions> r = ResolveOptions(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->method, clm::v1::PLATT);
  EXPECT_EQ(r->folds, 3);
  EXPECT_EQ(r->bins, 20);
  EXPECT_DOUBLE_EQ(r->tolerance, 0.1);
  EXPECT_EQ(r->neutral_handling, clm::v1::NEUTRAL_AS_HALF);
}

void ExpectInvalid(const clm::v1::CalibrationOptions& o, const std::string& field) {
  absl::StatusOr<ResolvedOptions> r = ResolveOptions(o);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << field;
  EXPECT_NE(r.status().message().find("options." + field), absl::string_view::npos) << r.status();
}

TEST(Options, InvalidValuesNameTheOption) {
  clm::v1::CalibrationOptions o;
  o.set_folds(1);
  ExpectInvalid(o, "folds");
  o = {};
  o.set_bins(-1);
  ExpectInvalid(o, "bins");
  o = {};
  o.set_bins(1001);
  ExpectInvalid(o, "bins");
  o = {};
  o.set_tolerance(1.5);
  ExpectInvalid(o, "tolerance");
  o = {};
  o.set_tolerance(-0.01);
  ExpectInvalid(o, "tolerance");
  o = {};
  o.set_bootstrap_resamples(10);
  ExpectInvalid(o, "bootstrap_resamples");
  o = {};
  o.set_min_slice_trades(-5);
  ExpectInvalid(o, "min_slice_trades");
  o = {};
  o.set_method(static_cast<clm::v1::CalibrationMethod>(9));
  ExpectInvalid(o, "method");
  o = {};
  o.set_neutral_handling(static_cast<clm::v1::NeutralHandling>(9));
  ExpectInvalid(o, "neutral_handling");
}

}  // namespace
}  // namespace clm::calibration
