#include "lib/calibration/report.h"

#include <string>

#include "gtest/gtest.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "lib/calibration/engine.h"
#include "tests/calibration/fixtures.h"

namespace clm::calibration {
namespace {

clm::v1::CalibrationResult Result() {
  const auto trades = testing::OverconfidentTrades(1200, 11, true);
  auto r = RunCalibration(trades, {}, {}, nullptr);
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

TEST(Report, MarkdownHasEverySection) {
  const auto result = Result();
  const std::string md = RenderMarkdown(result);
  for (const char* heading : {"# CLM Calibration Report", "## Summary", "## MSE before/after", "## Reliability",
                              "## Findings", "## Slices", "### Symbols", "### Models", "## Ensemble",
                              "## Deployed map", "## Safety"}) {
    EXPECT_NE(md.find(heading), std::string::npos) << heading;
  }
  EXPECT_NE(md.find("| In-sample | 1200 |"), std::string::npos);
  EXPECT_NE(md.find("Out-of-sample (walk-forward, "), std::string::npos);
  EXPECT_NE(md.find("| Confidence | Probability | Lower | Upper | Trades |"), std::string::npos) << md;
  EXPECT_NE(md.find("Widest interval: "), std::string::npos);
  EXPECT_NE(md.find("predictions 0.50-0.70: over-confident"), std::string::npos) << md;
  EXPECT_NE(md.find("| BTCUSDT |"), std::string::npos);
  EXPECT_NE(md.find("| xgboost |"), std::string::npos);
  EXPECT_NE(md.find("Total weight change: "), std::string::npos);
  EXPECT_NE(md.find("Deployment Ready: YES"), std::string::npos);
  EXPECT_NE(md.find("Risk formula: "), std::string::npos);
  // The figures come from the result, not from a template.
  char mse[64];
  std::snprintf(mse, sizeof mse, "%.4f", result.evaluation().out_of_sample_after().mse());
  EXPECT_NE(md.find(mse), std::string::npos);
}

TEST(Report, MarkdownForTooLittleData) {
  clm::v1::CalibrationResult r;
  r.mutable_evaluation()->set_note("no labelled trades: nothing to calibrate or evaluate");
  r.mutable_safety()->add_errors("no calibration map was fitted");
  r.mutable_ensemble()->set_note("no labelled trade carries per-model confidences");
  const std::string md = RenderMarkdown(r);
  EXPECT_NE(md.find("nothing to calibrate"), std::string::npos);
  EXPECT_NE(md.find("ERROR: no calibration map was fitted"), std::string::npos);
  EXPECT_NE(md.find("Deployment Ready: NO"), std::string::npos);
}

TEST(Report, JsonRoundTrips) {
  const auto result = Result();
  absl::StatusOr<std::string> json = RenderJson(result);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_NE(json->find("\"deployment_ready\": true"), std::string::npos);
  EXPECT_NE(json->find("\"x_thresholds\""), std::string::npos);
  clm::v1::CalibrationResult back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*json, &back).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::ApproximatelyEquals(back, result));
}

}  // namespace
}  // namespace clm::calibration
