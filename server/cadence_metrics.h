#ifndef CLM_SERVER_CADENCE_METRICS_H_
#define CLM_SERVER_CADENCE_METRICS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clm/v1/cadence.pb.h"
#include "lib/cadence/monitor.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace clm::server {

// The learning-cadence report as Prometheus metrics. Names are part of the interface (dashboards and alert
// rules are written against them):
//
//   clm_cadence_gate_value{gate}            current value of each gate (trades, days, share as a fraction)
//   clm_cadence_gate_requirement{gate}      its minimum
//   clm_cadence_gate_passed{gate}           1 when current >= minimum
//   clm_cadence_level_authorized{level}     1 when the level (and every lower one) is authorized
//   clm_cadence_trigger_fired{trigger}      1 when the trigger fired in the latest evaluation
//   clm_cadence_trigger_threshold{trigger}  BATCH: batch_new_trades; TIME: time_min_new_trades
//   clm_cadence_new_trades_since_training   trades stored after the data of the last training
//   clm_cadence_mode{mode}                  1 for the mode in force, 0 for the others
//   clm_cadence_ready                       1 when learning is due and allowed
//   clm_cadence_seconds_since_last_training -1 when never trained (Prometheus alerts handle -1 better than
//                                           NaN); otherwise refreshed between evaluations too
//   clm_cadence_trainings_total             successful trainings recorded (a gauge: it mirrors the store)
//   clm_cadence_monitor_evaluations_total   monitor evaluations attempted
//   clm_cadence_monitor_actions_total       jobs the monitor submitted or approved into shadow
//   clm_cadence_monitor_errors_total        evaluations or job-system calls that failed
//
// Labels come from fixed sets: gate in {total_trades, span_days, win_share, loss_share}, level in
// {CALIBRATION, SHADOW, PRODUCTION}, trigger in {BATCH, TIME}, mode in {LOGGING_ONLY, AUTO_CALIBRATE,
// AUTO_SHADOW}. Every series is created (at 0) at construction and resolved once.
//
// Thread-safe. SetReport and SetCounters only Set/Increment pre-resolved handles under a short mutex, so
// they may run in a monitor subscriber callback.
class CadenceMetrics final {
 public:
  // Registers the families on `registry` (the server's shared one, Metrics::registry()).
  explicit CadenceMetrics(prometheus::Registry& registry);
  ~CadenceMetrics();  // Detach()es
  CadenceMetrics(const CadenceMetrics&) = delete;
  CadenceMetrics& operator=(const CadenceMetrics&) = delete;

  // The latest all-trades report. Gate, level and trigger entries with names outside the fixed sets are
  // ignored (they cannot occur with the current evaluator).
  void SetReport(const clm::v1::CadenceReport& report);
  // The monitor's monotonic counters; the Prometheus counters advance by the difference to the last call.
  void SetCounters(const cadence::MonitorCounters& counters);
  // Recomputes clm_cadence_seconds_since_last_training at `now` from the last report's last_training_at.
  void RefreshSecondsSinceTraining(absl::Time now);

  // Follows `monitor` (which must outlive Detach): its current report at once, every changed report from a
  // subscription, and every `refresh` the counters and seconds since the last training from a thread of
  // its own (a quiet monitor publishes no new report, but still evaluates). At most one monitor at a time.
  void Attach(cadence::Monitor* monitor, absl::Duration refresh = absl::Seconds(5));
  // Unsubscribes and joins the refresh thread. Idempotent. Call before the monitor goes away.
  void Detach();

 private:
  static constexpr int kGates = 4;
  static constexpr int kLevels = 3;
  static constexpr int kTriggers = 2;
  static constexpr int kModes = 3;

  void RefreshLoop(cadence::Monitor* monitor, absl::Duration refresh);

  std::array<prometheus::Gauge*, kGates> gate_value_{};
  std::array<prometheus::Gauge*, kGates> gate_requirement_{};
  std::array<prometheus::Gauge*, kGates> gate_passed_{};
  std::array<prometheus::Gauge*, kLevels> level_authorized_{};
  std::array<prometheus::Gauge*, kTriggers> trigger_fired_{};
  std::array<prometheus::Gauge*, kTriggers> trigger_threshold_{};
  std::array<prometheus::Gauge*, kModes> mode_{};
  prometheus::Gauge* new_trades_since_training_ = nullptr;
  prometheus::Gauge* ready_ = nullptr;
  prometheus::Gauge* seconds_since_last_training_ = nullptr;
  prometheus::Gauge* trainings_total_ = nullptr;
  prometheus::Counter* evaluations_ = nullptr;
  prometheus::Counter* actions_ = nullptr;
  prometheus::Counter* errors_ = nullptr;

  absl::Mutex mu_;
  std::optional<absl::Time> last_training_at_ ABSL_GUARDED_BY(mu_);
  cadence::MonitorCounters seen_ ABSL_GUARDED_BY(mu_);

  // Attachment: the subscription and the refresh thread.
  absl::Mutex attach_mu_;
  cadence::Monitor* monitor_ ABSL_GUARDED_BY(attach_mu_) = nullptr;
  uint64_t subscription_ ABSL_GUARDED_BY(attach_mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(attach_mu_) = false;
  std::thread refresher_;
};

}  // namespace clm::server

#endif  // CLM_SERVER_CADENCE_METRICS_H_
