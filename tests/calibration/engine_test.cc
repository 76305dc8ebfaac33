#include "lib/calibration/engine.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/calibration/fixtures.h"

namespace clm::calibration {
namespace {

using testing::MakeTrade;
using testing::OverconfidentTrades;

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list, const std::string& needle) {
  for (const auto& s : list) {
    if (s.find(needle) != std::string::npos) return true;
  }
  return false;
}

absl::StatusOr<clm::v1::CalibrationResult> Calibrate(const std::vector<clm::Trade>& trades,
                                               const clm::v1::CalibrationOptions& options = {},
                                               const EnsembleWeights& weights = {}) {
  return RunCalibration(trades, options, weights, nullptr);
}

TEST(Engine, FindsAndFixesTheOverConfidentRange) {
  const auto trades = OverconfidentTrades(1500, 1);
  auto r = Calibrate(trades);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->trades_total(), 1500u);
  EXPECT_EQ(r->trades_used(), 1500u);
  EXPECT_EQ(r->wins() + r->losses(), 1500u);

  ASSERT_GE(r->findings_size(), 1);
  bool found = false;
  for (const auto& f : r->findings()) {
    if (f.kind() == clm::v1::Finding::FINDING_OVER_CONFIDENT && f.lo() == 0.5 && f.hi() == 0.7) {
      found = true;
      EXPECT_NEAR(f.observed(), 0.38, 0.06);
      EXPECT_NE(f.text().find("predictions 0.50-0.70: over-confident"), std::string::npos);
    }
  }
  EXPECT_TRUE(found);

  const auto& ev = r->evaluation();
  ASSERT_TRUE(ev.cross_validated());
  EXPECT_EQ(ev.folds(), 5);
  EXPECT_LT(ev.out_of_sample_after().mse(), ev.out_of_sample_before().mse());
  EXPECT_GT(ev.improvement_ci_low(), 0.0);
  EXPECT_EQ(r->global_map().method(), clm::v1::ISOTONIC);
  EXPECT_EQ(r->global_map().trained_on(), 1500u);
  // The calibrated 0.60 sits near the observed 38%, not the raw 60%.
  EXPECT_NEAR(Apply(r->global_map(), 0.60), 0.38, 0.08);
  EXPECT_TRUE(r->safety().deployment_ready()) << r->safety().DebugString();
  EXPECT_TRUE(r->reliability_after_out_of_sample());
  EXPECT_EQ(r->reliability_before_size(), 10);
}

TEST(Engine, NeutralHandling) {
  const auto trades = OverconfidentTrades(400, 2, false, 0.25);
  auto excluded = Calibrate(trades);
  ASSERT_TRUE(excluded.ok());
  EXPECT_GT(excluded->neutrals(), 50u);
  EXPECT_EQ(excluded->trades_excluded(), excluded->neutrals());
  EXPECT_EQ(excluded->trades_used(), 400u - excluded->neutrals());

  clm::v1::CalibrationOptions half;
  half.set_neutral_handling(clm::v1::NEUTRAL_AS_HALF);
  auto as_half = Calibrate(trades, half);
  ASSERT_TRUE(as_half.ok());
  EXPECT_EQ(as_half->trades_used(), 400u);
  EXPECT_EQ(as_half->trades_excluded(), 0u);
  EXPECT_NEAR(as_half->base_rate(), (as_half->wins() + 0.5 * as_half->neutrals()) / 400.0, 1e-12);

  clm::v1::CalibrationOptions loss;
  loss.set_neutral_handling(clm::v1::NEUTRAL_AS_LOSS);
  auto as_loss = Calibrate(trades, loss);
  ASSERT_TRUE(as_loss.ok());
  EXPECT_NEAR(as_loss->base_rate(), as_loss->wins() / 400.0, 1e-12);
}

TEST(Engine, SlicesFallBackToTheGlobalMapWhenThin) {
  const auto trades = OverconfidentTrades(1000, 3);
  clm::v1::CalibrationOptions o;
  o.set_min_slice_trades(250);
  auto r = Calibrate(trades, o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->symbol_slices_size(), 3);
  ASSERT_EQ(r->symbol_maps_size(), 3);
  EXPECT_EQ(r->symbol_slices(0).key(), "BTCUSDT");
  EXPECT_FALSE(r->symbol_maps(0).uses_global_map());   // ~500 trades
  EXPECT_EQ(r->symbol_maps(0).map().trained_on(), r->symbol_slices(0).labelled());
  EXPECT_EQ(r->symbol_slices(2).key(), "SOLUSDT");
  EXPECT_TRUE(r->symbol_maps(2).uses_global_map());    // ~200 trades
  EXPECT_EQ(r->symbol_maps(2).map().SerializeAsString(), r->global_map().SerializeAsString());
  EXPECT_NE(r->symbol_maps(2).note().find("< 250 needed for an own map: using the global map"), std::string::npos);
  uint64_t total = 0;
  for (const auto& s : r->symbol_slices()) {
    total += s.labelled();
    EXPECT_TRUE(s.out_of_sample());
    EXPECT_EQ(s.bins_size(), 10);
  }
  EXPECT_EQ(total, 1000u);
  ASSERT_EQ(r->model_slices_size(), 2);
  EXPECT_EQ(r->model_slices(0).key(), "ensemble_v3");
  EXPECT_EQ(r->model_slices(1).key(), "exit_v1");
}

TEST(Engine, EnsembleWithAndWithoutPerModelData) {
  auto without = Calibrate(OverconfidentTrades(300, 4));
  ASSERT_TRUE(without.ok());
  EXPECT_FALSE(without->ensemble().has_model_data());
  EXPECT_EQ(without->ensemble().models_size(), 0);

  auto with = Calibrate(OverconfidentTrades(300, 4, true), {}, {{"xgboost", 0.5}, {"lightgbm", 0.5}});
  ASSERT_TRUE(with.ok());
  const auto& e = with->ensemble();
  ASSERT_TRUE(e.has_model_data());
  ASSERT_EQ(e.models_size(), 2);
  EXPECT_EQ(e.models(0).model(), "lightgbm");
  EXPECT_LE(e.models(0).skill(), 0.0);
  EXPECT_GT(e.models(1).skill(), 0.0);
  EXPECT_NEAR(e.models(1).proposed_weight(), 1.0, 1e-12);
  EXPECT_NEAR(e.total_weight_change(), 1.0, 1e-12);
  EXPECT_TRUE(e.rebalance_recommended());
}

TEST(Engine, TooFewTradesIsReportedNotCrashed) {
  std::vector<clm::Trade> trades;
  for (int i = 0; i < 7; ++i) {
    trades.push_back(MakeTrade(i + 1, "BTCUSDT", 0.5 + 0.05 * i, i % 2 ? clm::Outcome::kWin : clm::Outcome::kLoss,
                               1000 + i));
  }
  auto r = Calibrate(trades);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->evaluation().cross_validated());
  EXPECT_FALSE(r->safety().deployment_ready());
  EXPECT_TRUE(Contains(r->safety().errors(), "too few labelled trades for the CALIBRATION level: 7 < 50"));
  EXPECT_TRUE(Contains(r->safety().errors(), "no out-of-sample evaluation"));
  EXPECT_TRUE(r->has_global_map());

  auto empty = Calibrate({});
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_global_map());
  EXPECT_FALSE(empty->safety().deployment_ready());
  EXPECT_TRUE(Contains(empty->safety().errors(), "no calibration map"));
}

TEST(Engine, InvalidInputNamesTheCulprit) {
  clm::v1::CalibrationOptions o;
  o.set_folds(1);
  auto r = Calibrate(OverconfidentTrades(100, 5), o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("options.folds"), absl::string_view::npos);

  auto trades = OverconfidentTrades(10, 5);
  trades[2].confidence = 1.7;
  r = Calibrate(trades);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("trades[2].confidence: must be within [0, 1], got 1.7"),
            absl::string_view::npos)
      << r.status();
}

TEST(Engine, ProgressAndCancel) {
  const auto trades = OverconfidentTrades(800, 6);
  std::vector<double> seen;
  auto r = RunCalibration(trades, {}, {}, [&seen](double p) {
    seen.push_back(p);
    return true;
  });
  ASSERT_TRUE(r.ok());
  ASSERT_GE(seen.size(), 5u);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i], seen[i - 1]);
  EXPECT_EQ(seen.back(), 1.0);

  for (double stop_at : {0.0, 0.3, 0.7}) {
    auto cancelled = RunCalibration(trades, {}, {}, [stop_at](double p) { return p < stop_at || stop_at < 0; });
    EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kCancelled) << stop_at;
  }
}

TEST(Engine, DeterministicAndPlatt) {
  const auto trades = OverconfidentTrades(600, 7);
  auto a = Calibrate(trades);
  auto b = Calibrate(trades);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->SerializeAsString(), b->SerializeAsString());

  clm::v1::CalibrationOptions o;
  o.set_method(clm::v1::PLATT);
  auto p = Calibrate(trades, o);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->global_map().method(), clm::v1::PLATT);
  EXPECT_EQ(p->options().method(), clm::v1::PLATT);
  EXPECT_LT(p->global_map().platt_a(), 0.0);
  EXPECT_TRUE(p->evaluation().cross_validated());
}

}  // namespace
}  // namespace clm::calibration
