#include "server/cadence_metrics.h"

#include <string>

#include "lib/cadence/policy.h"

namespace clm::server {
namespace {

// The fixed label sets, in the evaluator's order.
constexpr const char* kGateNames[] = {"total_trades", "span_days", "win_share", "loss_share"};
constexpr clm::v1::AuthorizationLevel kLevelValues[] = {clm::v1::CALIBRATION, clm::v1::SHADOW, clm::v1::PRODUCTION};
constexpr clm::v1::TriggerType kTriggerValues[] = {clm::v1::TRIGGER_BATCH, clm::v1::TRIGGER_TIME};
constexpr clm::v1::LearningMode kModeValues[] = {clm::v1::LOGGING_ONLY, clm::v1::AUTO_CALIBRATE, clm::v1::AUTO_SHADOW};

int GateIndex(const std::string& name) {
  for (int i = 0; i < 4; ++i) {
    if (name == kGateNames[i]) return i;
  }
  return -1;
}

template <typename Enum, size_t N>
int IndexOf(const Enum (&values)[N], Enum value) {
  for (size_t i = 0; i < N; ++i) {
    if (values[i] == value) return static_cast<int>(i);
  }
  return -1;
}

prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& registry, const std::string& name,
                                                   const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

// Advances `counter` to a monitor total; a smaller total (a new monitor) starts counting afresh.
void Advance(prometheus::Counter* counter, uint64_t total, uint64_t seen) {
  if (total > seen) counter->Increment(static_cast<double>(total - seen));
}

}  // namespace

CadenceMetrics::CadenceMetrics(prometheus::Registry& registry) {
  auto& gate_value = GaugeFamily(registry, "clm_cadence_gate_value",
                                 "Current value of each data-quality gate (trades, days, or share as a fraction)");
  auto& gate_requirement =
      GaugeFamily(registry, "clm_cadence_gate_requirement", "Minimum each data-quality gate requires");
  auto& gate_passed = GaugeFamily(registry, "clm_cadence_gate_passed", "1 when the gate passes, else 0");
  for (int i = 0; i < kGates; ++i) {
    gate_value_[i] = &gate_value.Add({{"gate", kGateNames[i]}});
    gate_requirement_[i] = &gate_requirement.Add({{"gate", kGateNames[i]}});
    gate_passed_[i] = &gate_passed.Add({{"gate", kGateNames[i]}});
  }
  auto& level = GaugeFamily(registry, "clm_cadence_level_authorized",
                            "1 when the authorization level (and every lower level) is authorized, else 0");
  for (int i = 0; i < kLevels; ++i) {
    level_authorized_[i] = &level.Add({{"level", cadence::LevelName(kLevelValues[i])}});
  }
  auto& fired = GaugeFamily(registry, "clm_cadence_trigger_fired", "1 when the trigger fired, else 0");
  auto& threshold = GaugeFamily(registry, "clm_cadence_trigger_threshold",
                                "New trades the trigger needs: BATCH batch_new_trades, TIME time_min_new_trades");
  for (int i = 0; i < kTriggers; ++i) {
    const std::string name = cadence::TriggerName(kTriggerValues[i]);
    trigger_fired_[i] = &fired.Add({{"trigger", name}});
    trigger_threshold_[i] = &threshold.Add({{"trigger", name}});
  }
  auto& mode = GaugeFamily(registry, "clm_cadence_mode", "1 for the learning mode in force, 0 for the others");
  for (int i = 0; i < kModes; ++i) mode_[i] = &mode.Add({{"mode", cadence::ModeName(kModeValues[i])}});
  new_trades_since_training_ =
      &GaugeFamily(registry, "clm_cadence_new_trades_since_training",
                   "Trades stored after the data the last training used (every trade when never trained)")
           .Add({});
  ready_ = &GaugeFamily(registry, "clm_cadence_ready",
                        "1 when learning is due and allowed: a trigger fired, every gate passed, CALIBRATION "
                        "authorized")
                .Add({});
  seconds_since_last_training_ = &GaugeFamily(registry, "clm_cadence_seconds_since_last_training",
                                              "Seconds since the last successful training; -1 when never trained")
                                      .Add({});
  seconds_since_last_training_->Set(-1);
  trainings_total_ =
      &GaugeFamily(registry, "clm_cadence_trainings_total", "Successful trainings recorded in the store").Add({});
  evaluations_ = &prometheus::BuildCounter()
                      .Name("clm_cadence_monitor_evaluations_total")
                      .Help("Cadence monitor evaluations attempted")
                      .Register(registry)
                      .Add({});
  actions_ = &prometheus::BuildCounter()
                  .Name("clm_cadence_monitor_actions_total")
                  .Help("Jobs the cadence monitor submitted or approved into shadow by itself")
                  .Register(registry)
                  .Add({});
  errors_ = &prometheus::BuildCounter()
                 .Name("clm_cadence_monitor_errors_total")
                 .Help("Cadence evaluations or job-system calls that failed")
                 .Register(registry)
                 .Add({});
}

CadenceMetrics::~CadenceMetrics() { Detach(); }

void CadenceMetrics::SetReport(const clm::v1::CadenceReport& report) {
  for (const clm::v1::GateStatus& gate : report.gates()) {
    const int i = GateIndex(gate.name());
    if (i < 0) continue;
    gate_value_[i]->Set(gate.current());
    gate_requirement_[i]->Set(gate.required());
    gate_passed_[i]->Set(gate.passed() ? 1 : 0);
  }
  for (const clm::v1::LevelStatus& level : report.levels()) {
    const int i = IndexOf(kLevelValues, level.level());
    if (i >= 0) level_authorized_[i]->Set(level.authorized() ? 1 : 0);
  }
  for (const clm::v1::TriggerStatus& trigger : report.triggers()) {
    const int i = IndexOf(kTriggerValues, trigger.type());
    if (i < 0) continue;
    trigger_fired_[i]->Set(trigger.fired() ? 1 : 0);
    trigger_threshold_[i]->Set(static_cast<double>(trigger.threshold()));
    // Both triggers count the same new trades.
    new_trades_since_training_->Set(static_cast<double>(trigger.new_trades_since_training()));
  }
  for (int i = 0; i < kModes; ++i) mode_[i]->Set(report.mode() == kModeValues[i] ? 1 : 0);
  ready_->Set(report.ready() ? 1 : 0);
  trainings_total_->Set(static_cast<double>(report.total_trainings()));
  seconds_since_last_training_->Set(
      report.has_seconds_since_last_training() ? static_cast<double>(report.seconds_since_last_training()) : -1);
  absl::MutexLock lock(&mu_);
  if (report.has_last_training_at()) {
    last_training_at_ = absl::FromUnixSeconds(report.last_training_at().seconds()) +
                        absl::Nanoseconds(report.last_training_at().nanos());
  } else {
    last_training_at_.reset();
  }
}

void CadenceMetrics::SetCounters(const cadence::MonitorCounters& counters) {
  absl::MutexLock lock(&mu_);
  if (counters.evaluations < seen_.evaluations) seen_ = cadence::MonitorCounters();
  Advance(evaluations_, counters.evaluations, seen_.evaluations);
  Advance(actions_, counters.actions, seen_.actions);
  Advance(errors_, counters.evaluation_errors, seen_.evaluation_errors);
  seen_ = counters;
}

void CadenceMetrics::RefreshSecondsSinceTraining(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (!last_training_at_.has_value()) return;
  seconds_since_last_training_->Set(absl::ToDoubleSeconds(now - *last_training_at_));
}

void CadenceMetrics::Attach(cadence::Monitor* monitor, absl::Duration refresh) {
  Detach();
  cadence::Monitor::Subscription subscription = monitor->Subscribe([this, monitor](const clm::v1::CadenceReport& r) {
    SetReport(r);
    SetCounters(monitor->counters());
  });
  if (subscription.current.has_value()) SetReport(*subscription.current);
  SetCounters(monitor->counters());
  absl::MutexLock lock(&attach_mu_);
  monitor_ = monitor;
  subscription_ = subscription.id;
  stop_ = false;
  refresher_ = std::thread([this, monitor, refresh] { RefreshLoop(monitor, refresh); });
}

void CadenceMetrics::Detach() {
  cadence::Monitor* monitor = nullptr;
  uint64_t subscription = 0;
  {
    absl::MutexLock lock(&attach_mu_);
    if (monitor_ == nullptr) return;
    stop_ = true;
    monitor = monitor_;
    subscription = subscription_;
    monitor_ = nullptr;
  }
  monitor->Unsubscribe(subscription);
  refresher_.join();
}

void CadenceMetrics::RefreshLoop(cadence::Monitor* monitor, absl::Duration refresh) {
  absl::MutexLock lock(&attach_mu_);
  while (!stop_) {
    attach_mu_.AwaitWithTimeout(absl::Condition(&stop_), refresh);
    if (stop_) break;
    attach_mu_.Unlock();
    SetCounters(monitor->counters());
    RefreshSecondsSinceTraining(absl::Now());
    attach_mu_.Lock();
  }
}

}  // namespace clm::server
