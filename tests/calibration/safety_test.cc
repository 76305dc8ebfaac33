#include "lib/calibration/safety.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "gtest/gtest.h"

namespace clm::calibration {
namespace {

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list, const std::string& needle) {
  for (const auto& s : list) {
    if (s.find(needle) != std::string::npos) return true;
  }
  return false;
}

// A result that passes every check: 500 labelled trades, a gentle map, honest out-of-sample gain.
clm::v1::CalibrationResult Healthy() {
  clm::v1::CalibrationResult r;
  r.set_trades_used(500);
  auto* map = r.mutable_global_map();
  map->set_method(clm::v1::ISOTONIC);
  for (double x : {0.3, 0.5, 0.7, 0.9}) map->add_x_thresholds(x);
  for (double y : {0.3, 0.4, 0.65, 0.9}) map->add_y_thresholds(y);
  // Its guard: 100 trades behind every knot, bounds 0.05 either side (0.9's upper stays below 1).
  for (double x : {0.3, 0.5, 0.7, 0.9}) map->add_guard_x(x);
  for (double y : {0.3, 0.4, 0.65, 0.9}) {
    map->add_guard_lower(y - 0.05);
    map->add_guard_upper(std::min(y + 0.05, 0.93));
    map->add_guard_trades(100);
  }
  auto* ev = r.mutable_evaluation();
  ev->set_cross_validated(true);
  ev->mutable_out_of_sample_before()->set_mse(0.25);
  ev->mutable_out_of_sample_after()->set_mse(0.20);
  ev->set_improvement_pct(20.0);
  ev->set_in_sample_improvement_pct(24.0);
  ev->set_improvement_ci_low(8.0);
  ev->set_improvement_ci_high(30.0);
  ev->set_bootstrap_resamples(1000);
  ev->set_ci_level(0.95);
  for (int b = 0; b < 10; ++b) r.add_reliability_before()->set_count(b >= 3 ? 50 : 0);
  auto* btc = r.add_symbol_slices();
  btc->set_key("BTCUSDT");
  btc->set_labelled(250);
  auto* eth = r.add_symbol_slices();
  eth->set_key("ETHUSDT");
  eth->set_labelled(250);
  return r;
}

clm::v1::SafetyValidation Validate(const clm::v1::CalibrationResult& r) {
  return ValidateSafety(r, ResolvedOptions(), 0.3, 0.9);
}

TEST(Safety, HealthyResultIsDeployableWithZeroRisk) {
  const auto s = Validate(Healthy());
  EXPECT_TRUE(s.deployment_ready());
  EXPECT_EQ(s.errors_size(), 0) << s.DebugString();
  EXPECT_EQ(s.warnings_size(), 0) << s.DebugString();
  EXPECT_EQ(s.risk_score(), 0.0);
  EXPECT_EQ(s.risk_level(), "LOW");
  EXPECT_NEAR(s.max_shift(), 0.1, 1e-12);  // 0.5 -> 0.4
  EXPECT_NEAR(s.widest_interval(), 0.1, 1e-12);
  EXPECT_EQ(s.thin_max_shift(), 0.0);
  EXPECT_EQ(s.risk_formula(), kRiskFormula);
}

TEST(Safety, CertaintyIsAnError) {
  auto r = Healthy();
  r.mutable_global_map()->clear_guard_x();  // an unguarded map that reaches 1.0
  r.mutable_global_map()->clear_guard_lower();
  r.mutable_global_map()->clear_guard_upper();
  r.mutable_global_map()->clear_guard_trades();
  r.mutable_global_map()->set_y_thresholds(3, 1.0);
  const auto s = Validate(r);
  EXPECT_FALSE(s.deployment_ready());
  EXPECT_TRUE(Contains(s.errors(), "claims certainty")) << s.DebugString();
}

TEST(Safety, ThinEvidenceShiftWarns) {
  auto r = Healthy();
  r.mutable_global_map()->set_guard_trades(1, 4);  // the knot at 0.5 (0.5 -> 0.4) rests on 4 trades
  const auto s = Validate(r);
  EXPECT_TRUE(s.deployment_ready());
  EXPECT_TRUE(Contains(s.warnings(), "thin evidence: confidence 0.500 moves by 0.100 on fewer than 10 trades"))
      << s.DebugString();
  EXPECT_NEAR(s.thin_max_shift(), 0.1, 1e-12);
  EXPECT_NEAR(s.thin_max_shift_at(), 0.5, 1e-12);
  EXPECT_NEAR(s.risk_score(), 0.20, 1e-12);
}

TEST(Safety, TooFewLabelledTradesIsAnError) {
  auto r = Healthy();
  r.set_trades_used(49);
  const auto s = Validate(r);
  EXPECT_FALSE(s.deployment_ready());
  EXPECT_TRUE(Contains(s.errors(), "too few labelled trades for the CALIBRATION level: 49 < 50"));
  EXPECT_EQ(s.risk_score(), 1.0);
  EXPECT_EQ(s.risk_level(), "HIGH");
}

TEST(Safety, InvalidOrNonMonotoneMapIsAnError) {
  auto r = Healthy();
  r.mutable_global_map()->set_y_thresholds(2, 0.35);  // decreasing
  auto s = Validate(r);
  EXPECT_FALSE(s.deployment_ready());
  EXPECT_TRUE(Contains(s.errors(), "invalid calibration map"));

  r = Healthy();
  r.mutable_global_map()->set_y_thresholds(1, std::nan(""));
  EXPECT_FALSE(Validate(r).deployment_ready());

  // A Platt map with a positive slope decreases in confidence.
  r = Healthy();
  auto* map = r.mutable_global_map();
  map->Clear();
  map->set_method(clm::v1::PLATT);
  map->set_platt_a(3.0);
  map->set_platt_b(-1.0);
  s = Validate(r);
  EXPECT_FALSE(s.deployment_ready());
  EXPECT_TRUE(Contains(s.errors(), "not monotone"));

  r = Healthy();
  r.clear_global_map();
  EXPECT_TRUE(Contains(Validate(r).errors(), "no calibration map"));
}

TEST(Safety, OutOfSampleNotBetterIsAnError) {
  auto r = Healthy();
  r.mutable_evaluation()->mutable_out_of_sample_after()->set_mse(0.25);  // equal is not better
  auto s = Validate(r);
  EXPECT_FALSE(s.deployment_ready());
  EXPECT_TRUE(Contains(s.errors(), "out-of-sample MSE not better: 0.2500 after vs 0.2500 before"));

  r = Healthy();
  r.mutable_evaluation()->set_cross_validated(false);
  r.mutable_evaluation()->set_note("out-of-sample evaluation not run: 7 labelled trades");
  s = Validate(r);
  EXPECT_FALSE(s.deployment_ready());
  EXPECT_TRUE(Contains(s.errors(), "no out-of-sample evaluation: out-of-sample evaluation not run: 7"));
}

TEST(Safety, LargeShiftWarns) {
  auto r = Healthy();
  r.mutable_global_map()->set_y_thresholds(0, 0.01);  // 0.3 -> 0.01: a shift of 0.29
  r.mutable_global_map()->set_guard_lower(0, 0.005);
  const auto s = Validate(r);
  EXPECT_TRUE(s.deployment_ready()) << s.DebugString();
  EXPECT_TRUE(Contains(s.warnings(), "large shift: confidence 0.300 moves by 0.290")) << s.DebugString();
  EXPECT_NEAR(s.risk_score(), 0.30, 1e-12);
  EXPECT_EQ(s.risk_level(), "MEDIUM");
  // Outside the confidences the engine produced, a shift is not a concern.
  EXPECT_EQ(ValidateSafety(r, ResolvedOptions(), 0.5, 0.9).warnings_size(), 0);
}

TEST(Safety, ThinBinsWarn) {
  auto r = Healthy();
  r.mutable_reliability_before(1)->set_count(3);
  r.mutable_reliability_before(1)->set_thin(true);
  const auto s = Validate(r);
  EXPECT_TRUE(Contains(s.warnings(), "1 thin reliability bin(s) with fewer than 10 trades"));
  EXPECT_NEAR(s.risk_score(), 0.10, 1e-12);
}

TEST(Safety, OverfittingGapWarns) {
  auto r = Healthy();
  r.mutable_evaluation()->set_in_sample_improvement_pct(35.0);  // 15 points above out-of-sample
  const auto s = Validate(r);
  EXPECT_TRUE(Contains(s.warnings(), "possible over-fitting: in-sample improvement 35.0% vs out-of-sample 20.0%"));
  EXPECT_NEAR(s.risk_score(), 0.25, 1e-12);
}

TEST(Safety, InsignificantImprovementIsAnError) {
  auto r = Healthy();
  r.mutable_evaluation()->set_improvement_ci_low(-2.0);
  auto s = Validate(r);
  EXPECT_FALSE(s.deployment_ready());
  EXPECT_TRUE(Contains(s.errors(), "improvement not significant: 95% interval of the out-of-sample improvement "
                                   "[-2.0%, 30.0%] does not lie above 0%"))
      << s.DebugString();

  // A required minimum: the lower bound must clear it.
  r = Healthy();
  ResolvedOptions o;
  o.min_improvement_pct = 10.0;
  s = ValidateSafety(r, o, 0.3, 0.9);
  EXPECT_FALSE(s.deployment_ready());
  EXPECT_TRUE(Contains(s.errors(), "does not lie above 10% (min_improvement_pct)")) << s.DebugString();
  o.min_improvement_pct = 7.5;
  EXPECT_TRUE(ValidateSafety(r, o, 0.3, 0.9).deployment_ready());
}

TEST(Safety, SignificantlyWorseIsSaidSo) {
  auto r = Healthy();
  r.mutable_evaluation()->set_improvement_ci_low(-7.4);
  r.mutable_evaluation()->set_improvement_ci_high(-3.9);
  const auto s = Validate(r);
  EXPECT_FALSE(s.deployment_ready());
  EXPECT_TRUE(Contains(s.errors(), "calibration is significantly worse out of sample: 95% interval of the "
                                   "improvement [-7.4%, -3.9%] lies below 0"))
      << s.DebugString();
}

TEST(Safety, DominantSymbolWarns) {
  auto r = Healthy();
  r.mutable_symbol_slices(0)->set_labelled(400);
  r.mutable_symbol_slices(1)->set_labelled(100);
  const auto s = Validate(r);
  EXPECT_TRUE(Contains(s.warnings(), "BTCUSDT dominates: 80.0% of the labelled trades (limit 60%)"));
  EXPECT_NEAR(s.risk_score(), 0.15, 1e-12);
}

TEST(Safety, RiskAddsUpAndCapsAtOne) {
  auto r = Healthy();
  r.mutable_global_map()->set_y_thresholds(0, 0.01);
  r.mutable_global_map()->set_guard_lower(0, 0.005);
  r.mutable_global_map()->set_guard_trades(1, 4);
  r.mutable_reliability_before(1)->set_thin(true);
  r.mutable_evaluation()->set_in_sample_improvement_pct(35.0);
  r.mutable_symbol_slices(0)->set_labelled(400);
  const auto s = Validate(r);
  EXPECT_EQ(s.warnings_size(), 5);
  EXPECT_NEAR(s.risk_score(), 1.0, 1e-12);
  EXPECT_TRUE(s.deployment_ready());  // warnings alone do not forbid deployment
}

}  // namespace
}  // namespace clm::calibration
