#include "lib/cadence/evaluator.h"

#include <string>

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "lib/cadence/policy.h"

namespace clm::cadence {
namespace {

using ::clm::v1::CadenceReport;

constexpr int64_t kDayUs = int64_t{86400} * 1'000'000;
constexpr int64_t kHourUs = int64_t{3600} * 1'000'000;
// 2026-02-06T17:00:00Z: the first trade of the audited data set, near enough.
constexpr int64_t kFirstUs = int64_t{1770397200} * 1'000'000;

DataSnapshot Data(uint64_t wins, uint64_t losses, uint64_t neutrals, int64_t span_us) {
  DataSnapshot d;
  d.wins = wins;
  d.losses = losses;
  d.neutrals = neutrals;
  d.total = wins + losses + neutrals;
  d.first_closed_at_us = kFirstUs;
  d.last_closed_at_us = kFirstUs + span_us;
  d.new_trades_since_training = d.total;
  return d;
}

absl::Time After(const DataSnapshot& d, int64_t us) { return absl::FromUnixMicros(d.last_closed_at_us + us); }

// The audit's data set: 748 trades over 3.2 days, 288 WIN, 248 LOSS, 212 NEUTRAL, never trained.
DataSnapshot WorkedExample() {
  DataSnapshot d = Data(288, 248, 212, 32 * kDayUs / 10);
  d.symbols = {{"ETHUSDT", 190}, {"BTCUSDT", 301}, {"SOLUSDT", 190}, {"BANANAS31USDT", 67}};
  d.model_ids = {"test_fix_v2_None", "ensemble_None", "autonomous_exit_None"};
  return d;
}

CadenceReport Eval(const DataSnapshot& d, const TrainingState& t = {},
                   clm::v1::LearningMode mode = clm::v1::LOGGING_ONLY,
                   const clm::v1::CadencePolicy& policy = DefaultPolicy()) {
  return Evaluate(policy, d, t, mode, After(d, kHourUs));
}

const clm::v1::GateStatus& Gate(const CadenceReport& r, const std::string& name) {
  for (const auto& g : r.gates()) {
    if (g.name() == name) return g;
  }
  ADD_FAILURE() << "no gate " << name;
  return r.gates(0);
}

TEST(EvaluatorTest, WorkedExampleComesOutExactly) {
  const CadenceReport r = Eval(WorkedExample());
  const auto& q = r.data();
  EXPECT_EQ(q.total_trades(), 748u);
  EXPECT_EQ(q.wins(), 288u);
  EXPECT_EQ(q.losses(), 248u);
  EXPECT_EQ(q.neutrals(), 212u);
  EXPECT_DOUBLE_EQ(q.win_rate(), 288.0 / 536.0);
  EXPECT_NEAR(q.win_rate(), 0.5373, 5e-5);
  EXPECT_NEAR(q.loss_rate(), 0.4627, 5e-5);
  EXPECT_NEAR(q.win_share(), 0.3850, 5e-5);
  EXPECT_NEAR(q.loss_share(), 0.3316, 5e-5);
  EXPECT_NEAR(q.neutral_share(), 0.2834, 5e-5);
  EXPECT_DOUBLE_EQ(q.span_days(), 3.2);
  EXPECT_EQ(q.first_closed_at().seconds(), 1770397200);
  EXPECT_EQ(q.last_closed_at().seconds(), 1770397200 + 32 * 86400 / 10);
  ASSERT_EQ(q.symbols_size(), 4);
  EXPECT_EQ(q.symbols(0).symbol(), "BTCUSDT");
  EXPECT_EQ(q.symbols(1).symbol(), "ETHUSDT");  // ties by name
  EXPECT_EQ(q.symbols(2).symbol(), "SOLUSDT");
  EXPECT_EQ(q.symbols(3).trades(), 67u);
  ASSERT_EQ(q.model_ids_size(), 3);
  EXPECT_EQ(q.model_ids(0), "autonomous_exit_None");

  ASSERT_EQ(r.gates_size(), 4);
  EXPECT_TRUE(r.all_gates_passed());
  EXPECT_EQ(Gate(r, "total_trades").detail(), "748 trades, need 50+");
  EXPECT_EQ(Gate(r, "span_days").detail(), "3.2 days, need 3.0+");
  EXPECT_EQ(Gate(r, "win_share").detail(), "WIN share 38.5%, need 20.0%+");
  EXPECT_EQ(Gate(r, "loss_share").detail(), "LOSS share 33.2%, need 20.0%+");
  EXPECT_EQ(Gate(r, "loss_share").required(), 0.20);

  ASSERT_EQ(r.levels_size(), 3);
  EXPECT_EQ(r.levels(0).level(), clm::v1::CALIBRATION);
  EXPECT_TRUE(r.levels(0).authorized());
  EXPECT_FALSE(r.levels(0).manual_approval_required());
  EXPECT_EQ(r.levels(0).reason(),
            "authorized: 748 trades (need 50), WIN share 38.5% (need 20.0%), LOSS share 33.2% (need 20.0%)");
  EXPECT_EQ(r.levels(1).level(), clm::v1::SHADOW);
  EXPECT_TRUE(r.levels(1).authorized());
  EXPECT_EQ(r.levels(1).reason(), "authorized: 748 trades (need 100), 3.2 days (need 3.0)");
  EXPECT_EQ(r.levels(2).level(), clm::v1::PRODUCTION);
  EXPECT_FALSE(r.levels(2).authorized());
  EXPECT_TRUE(r.levels(2).manual_approval_required());
  EXPECT_EQ(r.levels(2).reason(), "not authorized: too few days: 3.2 of 14.0; manual approval required");
  EXPECT_EQ(r.highest_authorized_level(), clm::v1::SHADOW);

  EXPECT_TRUE(r.trigger_fired());
  EXPECT_EQ(r.fired_trigger().type(), clm::v1::TRIGGER_BATCH);
  EXPECT_EQ(r.fired_trigger().new_trades_since_training(), 748u);
  EXPECT_EQ(r.fired_trigger().threshold(), 100u);
  EXPECT_EQ(r.fired_trigger().detail(), "748/100 new trades");
  EXPECT_EQ(r.mode(), clm::v1::LOGGING_ONLY);
  EXPECT_FALSE(r.has_last_training_at());
  EXPECT_FALSE(r.has_seconds_since_last_training());
  EXPECT_EQ(r.total_trainings(), 0u);
  EXPECT_TRUE(r.ready());
  EXPECT_EQ(r.next_action(),
            "BATCH trigger fired (748/100 new trades): manual intervention required: submit a calibration "
            "job, or set mode AUTO_CALIBRATE to let the monitor submit it");
  EXPECT_EQ(r.summary(),
            "748 trades over 3.2 days (WIN 38.5%, LOSS 33.2%, NEUTRAL 28.3%, win rate 53.7%); gates 4/4 "
            "passed; CALIBRATION yes, SHADOW yes, PRODUCTION no (manual approval); BATCH fired 748/100 new "
            "trades; mode LOGGING_ONLY; ready");

  const std::string text = FormatReportText(r);
  EXPECT_NE(text.find("win rate 53.7%, loss rate 46.3%; shares WIN 38.5%, LOSS 33.2%, NEUTRAL 28.3%"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  BATCH: FIRED (748/100 new trades)"), std::string::npos) << text;
  EXPECT_NE(text.find("Mode: LOGGING_ONLY; last training: never; total trainings: 0"), std::string::npos);
}

TEST(EvaluatorTest, IsDeterministic) {
  const CadenceReport a = Eval(WorkedExample());
  const CadenceReport b = Eval(WorkedExample());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(a, b));
}

TEST(EvaluatorTest, EmptyDataFailsEveryGateWithoutDividingByZero) {
  DataSnapshot d;
  const CadenceReport r =
      Evaluate(DefaultPolicy(), d, {}, clm::v1::LOGGING_ONLY, absl::FromUnixSeconds(1000000000));
  EXPECT_EQ(r.data().total_trades(), 0u);
  EXPECT_EQ(r.data().win_rate(), 0.0);
  EXPECT_EQ(r.data().loss_rate(), 0.0);
  EXPECT_EQ(r.data().win_share(), 0.0);
  EXPECT_EQ(r.data().neutral_share(), 0.0);
  EXPECT_EQ(r.data().span_days(), 0.0);
  EXPECT_FALSE(r.data().has_first_closed_at());
  for (const auto& g : r.gates()) EXPECT_FALSE(g.passed()) << g.name();
  EXPECT_FALSE(r.all_gates_passed());
  for (const auto& l : r.levels()) EXPECT_FALSE(l.authorized());
  EXPECT_EQ(r.highest_authorized_level(), clm::v1::AUTHORIZATION_LEVEL_UNSPECIFIED);
  EXPECT_FALSE(r.trigger_fired());
  EXPECT_FALSE(r.has_fired_trigger());
  EXPECT_EQ(r.triggers(1).detail(), "no trades yet (max 24.0h)");
  EXPECT_FALSE(r.ready());
  EXPECT_EQ(r.next_action(),
            "Wait for more data: 0 trades, need 50+; 0.0 days, need 3.0+; WIN share 0.0%, need 20.0%+; LOSS "
            "share 0.0%, need 20.0%+");
}

TEST(EvaluatorTest, OnlyNeutralTradesAreNoLabels) {
  const DataSnapshot d = Data(0, 0, 60, 4 * kDayUs);
  const CadenceReport r = Eval(d);
  EXPECT_EQ(r.data().win_rate(), 0.0);
  EXPECT_EQ(r.data().loss_rate(), 0.0);
  EXPECT_EQ(r.data().neutral_share(), 1.0);
  EXPECT_TRUE(Gate(r, "total_trades").passed());
  EXPECT_TRUE(Gate(r, "span_days").passed());
  EXPECT_FALSE(Gate(r, "win_share").passed());
  EXPECT_FALSE(Gate(r, "loss_share").passed());
  EXPECT_EQ(r.levels(0).reason(), "not authorized: WIN share 0.0% below 20.0%; LOSS share 0.0% below 20.0%");
  // Levels are cumulative: shadow's own requirements (100 trades) fail too, and it names the lower level.
  EXPECT_EQ(r.levels(1).reason(), "not authorized: CALIBRATION not authorized; too few trades: 60 of 100");
  EXPECT_FALSE(r.triggers(0).fired());  // 60 < 100
  EXPECT_TRUE(r.triggers(1).fired());   // more than a day since the first trade, 60 >= 20 new
  EXPECT_EQ(r.fired_trigger().type(), clm::v1::TRIGGER_TIME);
  EXPECT_FALSE(r.ready());
  EXPECT_EQ(r.next_action(), "Wait for more data: WIN share 0.0%, need 20.0%+; LOSS share 0.0%, need 20.0%+");
}

TEST(EvaluatorTest, OneSidedOutcomesAreNotAuthorized) {
  const CadenceReport wins_only = Eval(Data(200, 0, 0, 5 * kDayUs));
  EXPECT_EQ(wins_only.data().win_rate(), 1.0);
  EXPECT_EQ(wins_only.data().loss_rate(), 0.0);
  EXPECT_TRUE(Gate(wins_only, "win_share").passed());
  EXPECT_FALSE(Gate(wins_only, "loss_share").passed());
  EXPECT_FALSE(wins_only.levels(0).authorized());
  EXPECT_FALSE(wins_only.levels(1).authorized());
  EXPECT_TRUE(wins_only.trigger_fired());
  EXPECT_FALSE(wins_only.ready());

  const CadenceReport losses_only = Eval(Data(0, 200, 0, 5 * kDayUs));
  EXPECT_EQ(losses_only.data().loss_rate(), 1.0);
  EXPECT_FALSE(Gate(losses_only, "win_share").passed());
  EXPECT_TRUE(Gate(losses_only, "loss_share").passed());
  EXPECT_EQ(losses_only.highest_authorized_level(), clm::v1::AUTHORIZATION_LEVEL_UNSPECIFIED);
}

TEST(EvaluatorTest, TotalTradesGateAtThreshold) {
  // 10 WIN and 10 LOSS: only the total moves across 50.
  EXPECT_FALSE(Gate(Eval(Data(10, 10, 29, 4 * kDayUs)), "total_trades").passed());
  const CadenceReport at = Eval(Data(10, 10, 30, 4 * kDayUs));
  EXPECT_TRUE(Gate(at, "total_trades").passed());
  EXPECT_EQ(Gate(at, "total_trades").current(), 50.0);
  EXPECT_TRUE(at.levels(0).authorized());
  EXPECT_TRUE(Gate(Eval(Data(10, 10, 31, 4 * kDayUs)), "total_trades").passed());
}

TEST(EvaluatorTest, SpanGateAtThreshold) {
  EXPECT_TRUE(Gate(Eval(Data(30, 30, 0, 3 * kDayUs)), "span_days").passed());
  EXPECT_TRUE(Gate(Eval(Data(30, 30, 0, 3 * kDayUs + 1)), "span_days").passed());
  const CadenceReport below = Eval(Data(30, 30, 0, 3 * kDayUs - 1));
  EXPECT_FALSE(Gate(below, "span_days").passed());
  const CadenceReport near = Eval(Data(30, 30, 0, 296 * kDayUs / 100));
  EXPECT_FALSE(Gate(near, "span_days").passed());
  // One decimal would read "3.0 days, need 3.0+": the text shows as many as it takes.
  EXPECT_EQ(Gate(near, "span_days").detail(), "2.96 days, need 3.0+");
}

TEST(EvaluatorTest, ShareGatesAtThreshold) {
  // Exactly 20%: 20 of 100 passes a 0.20 minimum.
  const CadenceReport at = Eval(Data(20, 20, 60, 4 * kDayUs));
  EXPECT_EQ(at.data().win_share(), 0.20);
  EXPECT_TRUE(Gate(at, "win_share").passed());
  EXPECT_TRUE(Gate(at, "loss_share").passed());
  EXPECT_TRUE(at.all_gates_passed());
  // Exactly 20% with another denominator: 10 of 50.
  EXPECT_TRUE(Eval(Data(10, 10, 30, 4 * kDayUs)).all_gates_passed());

  const CadenceReport below = Eval(Data(19, 20, 61, 4 * kDayUs));
  EXPECT_FALSE(Gate(below, "win_share").passed());
  EXPECT_EQ(Gate(below, "win_share").detail(), "WIN share 19.0%, need 20.0%+");
  EXPECT_TRUE(Gate(below, "loss_share").passed());
  EXPECT_EQ(below.levels(0).reason(), "not authorized: WIN share 19.0% below 20.0%");

  // 199 of 1000 is 19.9%; the text still shows why it fails.
  const CadenceReport just_below = Eval(Data(199, 300, 501, 4 * kDayUs));
  EXPECT_FALSE(Gate(just_below, "win_share").passed());
  EXPECT_EQ(Gate(just_below, "win_share").detail(), "WIN share 19.9%, need 20.0%+");
  const CadenceReport rounds_up = Eval(Data(1999, 3000, 5001, 4 * kDayUs));
  EXPECT_EQ(Gate(rounds_up, "win_share").detail(), "WIN share 19.99%, need 20.0%+");

  // A non-binary minimum compares exactly as well: 3 of 10 meets 0.3.
  clm::v1::CadencePolicy policy = DefaultPolicy();
  policy.mutable_gates()->set_min_win_share(0.3);
  policy.mutable_gates()->set_min_total_trades(10);
  EXPECT_TRUE(Gate(Eval(Data(3, 3, 4, 4 * kDayUs), {}, clm::v1::LOGGING_ONLY, policy), "win_share").passed());
}

TEST(EvaluatorTest, LevelsAtThresholds) {
  // Shadow: 100 trades and 3 days.
  EXPECT_FALSE(Eval(Data(33, 33, 33, 3 * kDayUs)).levels(1).authorized());
  const CadenceReport shadow = Eval(Data(34, 33, 33, 3 * kDayUs));
  EXPECT_TRUE(shadow.levels(1).authorized());
  EXPECT_EQ(shadow.highest_authorized_level(), clm::v1::SHADOW);
  EXPECT_FALSE(Eval(Data(34, 33, 33, 3 * kDayUs - 1)).levels(1).authorized());
  // Calibration has no span requirement: 50 balanced trades in an hour are enough for it.
  const CadenceReport quick = Eval(Data(20, 20, 10, kHourUs));
  EXPECT_TRUE(quick.levels(0).authorized());
  EXPECT_FALSE(quick.levels(1).authorized());
  EXPECT_FALSE(Gate(quick, "span_days").passed());
  EXPECT_FALSE(quick.ready());  // the span gate still holds learning back

  // Production: 500 trades and 14 days; authorized, yet a person must still approve.
  EXPECT_FALSE(Eval(Data(200, 200, 99, 14 * kDayUs)).levels(2).authorized());
  EXPECT_FALSE(Eval(Data(200, 200, 100, 14 * kDayUs - 1)).levels(2).authorized());
  const CadenceReport production = Eval(Data(200, 200, 100, 14 * kDayUs));
  EXPECT_TRUE(production.levels(2).authorized());
  EXPECT_TRUE(production.levels(2).manual_approval_required());
  EXPECT_EQ(production.levels(2).reason(),
            "authorized: 500 trades (need 500), 14.0 days (need 14.0); manual approval required");
  EXPECT_EQ(production.highest_authorized_level(), clm::v1::PRODUCTION);
}

TEST(EvaluatorTest, DiversityCanBeDroppedForCalibration) {
  clm::v1::CadencePolicy policy = DefaultPolicy();
  policy.mutable_levels()->mutable_calibration()->set_require_diversity(false);
  const CadenceReport r = Eval(Data(200, 0, 0, 5 * kDayUs), {}, clm::v1::LOGGING_ONLY, policy);
  EXPECT_TRUE(r.levels(0).authorized());
  EXPECT_TRUE(r.levels(1).authorized());
  // The gates still stand between one-sided data and learning.
  EXPECT_FALSE(r.ready());
}

TEST(EvaluatorTest, BatchTriggerAtThreshold) {
  DataSnapshot d = WorkedExample();
  TrainingState trained{d.last_closed_at_us, 3};
  d.new_trades_since_training = 99;
  CadenceReport r = Eval(d, trained);
  EXPECT_FALSE(r.triggers(0).fired());
  EXPECT_FALSE(r.trigger_fired());
  EXPECT_FALSE(r.ready());
  EXPECT_EQ(r.next_action(),
            "Nothing due yet: BATCH 99/100 new trades; TIME 1.0h since last training (max 24.0h), 99/20 new "
            "trades");
  d.new_trades_since_training = 100;
  r = Eval(d, trained);
  EXPECT_TRUE(r.triggers(0).fired());
  EXPECT_EQ(r.fired_trigger().type(), clm::v1::TRIGGER_BATCH);
  EXPECT_TRUE(r.ready());
  EXPECT_EQ(r.total_trainings(), 3u);
  EXPECT_EQ(r.last_training_at().seconds(), d.last_closed_at_us / 1'000'000);
  EXPECT_EQ(r.seconds_since_last_training(), 3600);
}

TEST(EvaluatorTest, TimeTriggerAtThreshold) {
  DataSnapshot d = WorkedExample();
  d.new_trades_since_training = 20;
  const absl::Time now = absl::FromUnixMicros(d.last_closed_at_us + kHourUs);
  const int64_t now_us = absl::ToUnixMicros(now);
  auto eval_trained_at = [&](int64_t at_us) {
    return Evaluate(DefaultPolicy(), d, TrainingState{at_us, 1}, clm::v1::LOGGING_ONLY, now);
  };
  CadenceReport r = eval_trained_at(now_us - 24 * kHourUs);
  EXPECT_TRUE(r.triggers(1).fired());
  EXPECT_EQ(r.triggers(1).elapsed_seconds(), 86400);
  EXPECT_EQ(r.triggers(1).max_interval_seconds(), 86400);
  EXPECT_EQ(r.triggers(1).threshold(), 20u);
  EXPECT_EQ(r.fired_trigger().type(), clm::v1::TRIGGER_TIME);
  EXPECT_EQ(r.fired_trigger().detail(), "24.0h since last training (max 24.0h), 20/20 new trades");
  EXPECT_EQ(r.next_action().rfind("TIME trigger fired (24.0h since last training", 0), 0u) << r.next_action();

  EXPECT_FALSE(eval_trained_at(now_us - 24 * kHourUs + 1).triggers(1).fired());
  d.new_trades_since_training = 19;
  EXPECT_FALSE(eval_trained_at(now_us - 48 * kHourUs).triggers(1).fired());
}

TEST(EvaluatorTest, BatchIsReportedBeforeTimeWhenBothFire) {
  const CadenceReport r = Eval(WorkedExample());  // never trained, 3.2 days since the first trade
  EXPECT_TRUE(r.triggers(0).fired());
  EXPECT_TRUE(r.triggers(1).fired());
  EXPECT_EQ(r.fired_trigger().type(), clm::v1::TRIGGER_BATCH);
  EXPECT_EQ(r.triggers(1).detail(), "77.8h since first trade (max 24.0h), 748/20 new trades");
}

TEST(EvaluatorTest, NextActionFollowsTheMode) {
  EXPECT_EQ(
      Eval(WorkedExample(), {}, clm::v1::AUTO_CALIBRATE).next_action(),
      "BATCH trigger fired (748/100 new trades): the monitor submits a calibration job; approve its result "
      "into shadow by hand");
  EXPECT_EQ(Eval(WorkedExample(), {}, clm::v1::AUTO_SHADOW).next_action(),
            "BATCH trigger fired (748/100 new trades): the monitor submits a calibration job and approves it "
            "into shadow if it passes safety validation");
  EXPECT_EQ(Eval(WorkedExample(), {}, clm::v1::AUTO_SHADOW).mode(), clm::v1::AUTO_SHADOW);
}

TEST(EvaluatorTest, ScopeIsCarriedIntoTheReport) {
  const DataSnapshot d = WorkedExample();
  const CadenceReport r =
      Evaluate(DefaultPolicy(), d, {}, clm::v1::LOGGING_ONLY, After(d, 0), "BTCUSDT", "ensemble_None");
  EXPECT_EQ(r.symbol(), "BTCUSDT");
  EXPECT_EQ(r.model_id(), "ensemble_None");
  EXPECT_EQ(r.summary().rfind("[symbol=BTCUSDT, model_id=ensemble_None] 748 trades", 0), 0u) << r.summary();
}

}  // namespace
}  // namespace clm::cadence
