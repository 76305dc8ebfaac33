// CadenceMetrics: the report and the monitor's counters as Prometheus series, read back from the registry.
#include "server/cadence_metrics.h"

#include <cmath>
#include <map>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "lib/cadence/evaluator.h"
#include "lib/cadence/in_memory_state_store.h"
#include "lib/cadence/policy.h"
#include "prometheus/registry.h"
#include "tests/cadence/fakes.h"

namespace clm::server {
namespace {

constexpr int64_t kDayUs = 86400LL * 1'000'000;

// The value of the series `name{label=value}` (no label when `label` is empty); NaN when absent.
double Value(const prometheus::Registry& registry, const std::string& name, const std::string& label = "",
             const std::string& value = "") {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      bool match = label.empty() ? metric.label.empty() : false;
      for (const auto& l : metric.label) match = match || (l.name == label && l.value == value);
      if (!match) continue;
      return family.type == prometheus::MetricType::Counter ? metric.counter.value : metric.gauge.value;
    }
  }
  return std::nan("");
}

cadence::DataSnapshot WorkedExample(absl::Time now) {
  cadence::DataSnapshot d;
  d.wins = 288;
  d.losses = 248;
  d.neutrals = 212;
  d.total = 748;
  d.last_closed_at_us = absl::ToUnixMicros(now - absl::Hours(1));
  d.first_closed_at_us = d.last_closed_at_us - 32 * kDayUs / 10;
  d.symbols = {{"BTCUSDT", 748}};
  d.model_ids = {"ensemble"};
  d.new_trades_since_training = 748;
  return d;
}

TEST(CadenceMetricsTest, EverySeriesExistsBeforeTheFirstReport) {
  prometheus::Registry registry;
  CadenceMetrics metrics(registry);
  for (const char* gate : {"total_trades", "span_days", "win_share", "loss_share"}) {
    EXPECT_EQ(Value(registry, "clm_cadence_gate_passed", "gate", gate), 0) << gate;
  }
  for (const char* level : {"CALIBRATION", "SHADOW", "PRODUCTION"}) {
    EXPECT_EQ(Value(registry, "clm_cadence_level_authorized", "level", level), 0) << level;
  }
  for (const char* mode : {"LOGGING_ONLY", "AUTO_CALIBRATE", "AUTO_SHADOW"}) {
    EXPECT_EQ(Value(registry, "clm_cadence_mode", "mode", mode), 0) << mode;
  }
  EXPECT_EQ(Value(registry, "clm_cadence_trigger_fired", "trigger", "TIME"), 0);
  EXPECT_EQ(Value(registry, "clm_cadence_seconds_since_last_training"), -1);
  EXPECT_EQ(Value(registry, "clm_cadence_monitor_evaluations_total"), 0);
}

TEST(CadenceMetricsTest, WorkedExampleReport) {
  prometheus::Registry registry;
  CadenceMetrics metrics(registry);
  const absl::Time now = absl::Now();
  metrics.SetReport(cadence::Evaluate(cadence::DefaultPolicy(), WorkedExample(now), {}, clm::v1::LOGGING_ONLY, now));

  EXPECT_EQ(Value(registry, "clm_cadence_gate_value", "gate", "total_trades"), 748);
  EXPECT_EQ(Value(registry, "clm_cadence_gate_requirement", "gate", "total_trades"), 50);
  EXPECT_NEAR(Value(registry, "clm_cadence_gate_value", "gate", "win_share"), 288.0 / 748, 1e-12);
  EXPECT_EQ(Value(registry, "clm_cadence_gate_requirement", "gate", "loss_share"), 0.2);
  EXPECT_NEAR(Value(registry, "clm_cadence_gate_value", "gate", "span_days"), 3.2, 1e-9);
  EXPECT_EQ(Value(registry, "clm_cadence_gate_passed", "gate", "span_days"), 1);
  EXPECT_EQ(Value(registry, "clm_cadence_level_authorized", "level", "CALIBRATION"), 1);
  EXPECT_EQ(Value(registry, "clm_cadence_level_authorized", "level", "SHADOW"), 1);
  EXPECT_EQ(Value(registry, "clm_cadence_level_authorized", "level", "PRODUCTION"), 0);
  EXPECT_EQ(Value(registry, "clm_cadence_trigger_fired", "trigger", "BATCH"), 1);
  EXPECT_EQ(Value(registry, "clm_cadence_trigger_threshold", "trigger", "BATCH"), 100);
  EXPECT_EQ(Value(registry, "clm_cadence_trigger_threshold", "trigger", "TIME"), 20);
  EXPECT_EQ(Value(registry, "clm_cadence_new_trades_since_training"), 748);
  EXPECT_EQ(Value(registry, "clm_cadence_mode", "mode", "LOGGING_ONLY"), 1);
  EXPECT_EQ(Value(registry, "clm_cadence_mode", "mode", "AUTO_SHADOW"), 0);
  EXPECT_EQ(Value(registry, "clm_cadence_ready"), 1);
  EXPECT_EQ(Value(registry, "clm_cadence_trainings_total"), 0);
  EXPECT_EQ(Value(registry, "clm_cadence_seconds_since_last_training"), -1);

  // After two trainings, the last an hour ago; refreshed between evaluations.
  cadence::TrainingState trained{absl::ToUnixMicros(now - absl::Hours(1)), 2};
  cadence::DataSnapshot after = WorkedExample(now);
  after.new_trades_since_training = 30;
  metrics.SetReport(cadence::Evaluate(cadence::DefaultPolicy(), after, trained, clm::v1::AUTO_SHADOW, now));
  EXPECT_EQ(Value(registry, "clm_cadence_trainings_total"), 2);
  EXPECT_EQ(Value(registry, "clm_cadence_seconds_since_last_training"), 3600);
  EXPECT_EQ(Value(registry, "clm_cadence_trigger_fired", "trigger", "BATCH"), 0);
  EXPECT_EQ(Value(registry, "clm_cadence_new_trades_since_training"), 30);
  EXPECT_EQ(Value(registry, "clm_cadence_ready"), 0);
  EXPECT_EQ(Value(registry, "clm_cadence_mode", "mode", "LOGGING_ONLY"), 0);
  EXPECT_EQ(Value(registry, "clm_cadence_mode", "mode", "AUTO_SHADOW"), 1);
  metrics.RefreshSecondsSinceTraining(now + absl::Seconds(60));
  EXPECT_NEAR(Value(registry, "clm_cadence_seconds_since_last_training"), 3660, 1e-3);
}

TEST(CadenceMetricsTest, CountersFollowTheMonitorTotals) {
  prometheus::Registry registry;
  CadenceMetrics metrics(registry);
  cadence::MonitorCounters c;
  c.evaluations = 5;
  c.actions = 2;
  c.evaluation_errors = 1;
  metrics.SetCounters(c);
  metrics.SetCounters(c);  // the same totals again add nothing
  EXPECT_EQ(Value(registry, "clm_cadence_monitor_evaluations_total"), 5);
  EXPECT_EQ(Value(registry, "clm_cadence_monitor_actions_total"), 2);
  EXPECT_EQ(Value(registry, "clm_cadence_monitor_errors_total"), 1);
  c.evaluations = 9;
  metrics.SetCounters(c);
  EXPECT_EQ(Value(registry, "clm_cadence_monitor_evaluations_total"), 9);
}

TEST(CadenceMetricsTest, AttachedToAMonitorFollowsItsReports) {
  cadence::testing::FakeSource source;
  cadence::InMemoryCadenceStateStore state;
  cadence::SystemClock clock;
  auto monitor = cadence::Monitor::Create(clm::v1::CadencePolicy(), {&source, &state, &clock, nullptr});
  ASSERT_TRUE(monitor.ok()) << monitor.status();
  ASSERT_TRUE((*monitor)->RunOnce().ok());  // an empty data set

  prometheus::Registry registry;
  CadenceMetrics metrics(registry);
  metrics.Attach(monitor->get());
  EXPECT_EQ(Value(registry, "clm_cadence_gate_value", "gate", "total_trades"), 0);
  EXPECT_EQ(Value(registry, "clm_cadence_mode", "mode", "LOGGING_ONLY"), 1);
  EXPECT_EQ(Value(registry, "clm_cadence_monitor_evaluations_total"), 1);

  source.Set({WorkedExample(absl::Now()), {}});
  ASSERT_TRUE((*monitor)->RunOnce().ok());  // publishes a changed report to the subscription
  EXPECT_EQ(Value(registry, "clm_cadence_gate_value", "gate", "total_trades"), 748);
  EXPECT_EQ(Value(registry, "clm_cadence_ready"), 1);
  EXPECT_EQ(Value(registry, "clm_cadence_monitor_evaluations_total"), 2);

  metrics.Detach();
  source.Set({});
  ASSERT_TRUE((*monitor)->RunOnce().ok());
  EXPECT_EQ(Value(registry, "clm_cadence_gate_value", "gate", "total_trades"), 748) << "detached";
}

}  // namespace
}  // namespace clm::server
