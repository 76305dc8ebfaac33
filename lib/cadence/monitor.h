#ifndef CLM_LIB_CADENCE_MONITOR_H_
#define CLM_LIB_CADENCE_MONITOR_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "clm/v1/cadence.pb.h"
#include "lib/cadence/interfaces.h"

namespace clm::cadence {

// Monotonic counters for metrics. Read with Monitor::counters().
struct MonitorCounters {
  uint64_t evaluations = 0;        // evaluations attempted (RunOnce calls)
  uint64_t evaluation_errors = 0;  // the snapshot or a job-system call failed
  uint64_t actions = 0;            // ACTED decisions: jobs submitted or approved into shadow
  uint64_t skips = 0;              // SKIPPED decisions, recorded or not
  uint64_t reports_published = 0;  // changed reports delivered to subscribers
};

// The learning-cadence monitor: evaluates the policy over all trades on a fixed interval and after ingest
// bursts, logs and publishes the report, and in AUTO_CALIBRATE / AUTO_SHADOW acts on it:
//
// - When the report is ready (a trigger fired, every gate passed, CALIBRATION authorized) and no job of its
//   own is in flight, it submits one calibration job and remembers it (persisted, so a restart neither
//   submits a second one nor loses the first).
// - On later evaluations it follows that job. In AUTO_SHADOW, once the job succeeded and is deployment
//   ready, it approves it into shadow. It never promotes to production.
// - At most one action per evaluation.
//
// Every decision (fired, acted, skipped and why) goes to a bounded in-memory history and to the
// CadenceStateStore. Consecutive evaluations reaching the same decision (same mode, trigger, action,
// operation, reason and job) are recorded once, at the first, so a quiet system does not grow the history.
//
// Threading contract:
// - Every public method is thread-safe.
// - Non-blocking (short mutexes only, never I/O), safe on gRPC reactor threads: Nudge, CurrentReport,
//   History, mode, last_mode_change, policy, counters, pending_job, report_version, Subscribe,
//   Unsubscribe, SetModeAsync, EvaluateScopeAsync.
// - Blocking (store and job-system I/O): RunOnce, SetMode, EvaluateScope, Start, Stop. Call them from
//   worker threads, main or tests.
// - Callbacks (report subscribers, async completions) run on the monitor thread, or on the thread calling
//   a blocking method, one at a time and in report order. They must not block and must not call
//   Subscribe, Unsubscribe, Stop or a blocking method; copying the report and posting it is the intent.
class Monitor final {
 public:
  struct Dependencies {
    SnapshotSource* source = nullptr;    // required
    CadenceStateStore* state = nullptr;  // required
    Clock* clock = nullptr;              // required
    // Optional: without it the automatic modes cannot be selected and the monitor only reports.
    JobLauncher* launcher = nullptr;
  };

  using ReportCallback = std::function<void(const clm::v1::CadenceReport&)>;

  // Resolves the policy (defaults + validation) and loads the persisted mode, decisions and pending job.
  // The dependencies must outlive the monitor. Does not evaluate: call Start() or RunOnce().
  static absl::StatusOr<std::unique_ptr<Monitor>> Create(const clm::v1::CadencePolicy& policy,
                                                         Dependencies deps);

  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;
  ~Monitor();  // Stop()s

  // One evaluation at the clock's now: load the data, evaluate, decide and act, record the decision,
  // publish the report if it changed. Returns the decision (with the id under which it is recorded), or the
  // snapshot's error (a SKIPPED decision naming it is recorded too). Tests drive the monitor with it.
  absl::StatusOr<clm::v1::MonitorDecision> RunOnce();

  // Evaluates once (a failure is logged, not fatal: the loop retries), then starts the background thread,
  // which evaluates every policy.monitor.interval_seconds and after Nudge()s. FailedPrecondition when
  // already started.
  absl::Status Start();
  // Wakes and joins the thread; queued async requests complete with UNAVAILABLE. Idempotent.
  void Stop();

  // Asks for an evaluation soon: the thread waits policy.monitor.nudge_debounce_ms so a burst of nudges
  // causes one evaluation. Cheap (an atomic exchange, and a short lock only on the first nudge of a
  // burst); never waits for an evaluation. Without a running thread it does nothing.
  void Nudge();

  // Persists and records the change, then republishes the report with the new mode and nudges so an
  // automatic mode acts soon. InvalidArgument for mode UNSPECIFIED or an empty changed_by (max 128 bytes)
  // or reason (max 1024 bytes); FailedPrecondition for an automatic mode without a launcher; the store's
  // error when it cannot persist (the mode is then unchanged).
  absl::StatusOr<clm::v1::ModeChange> SetMode(clm::v1::LearningMode mode, const std::string& changed_by,
                                              const std::string& reason);
  // SetMode on the monitor thread; `done` gets its result. Completes at once with UNAVAILABLE when the
  // thread is not running and RESOURCE_EXHAUSTED when too many requests are queued (then `done` runs on
  // the caller's thread, before this returns).
  void SetModeAsync(clm::v1::LearningMode mode, std::string changed_by, std::string reason,
                    std::function<void(absl::StatusOr<clm::v1::ModeChange>)> done);

  // The latest all-trades report (no I/O). UNAVAILABLE before the first successful evaluation.
  absl::StatusOr<clm::v1::CadenceReport> CurrentReport() const;

  // A fresh evaluation of `scope` with the current mode. Reports only: never acts, records or publishes.
  absl::StatusOr<clm::v1::CadenceReport> EvaluateScope(const Scope& scope);
  // EvaluateScope on the monitor thread; completion as for SetModeAsync.
  void EvaluateScopeAsync(Scope scope, std::function<void(absl::StatusOr<clm::v1::CadenceReport>)> done);

  // Registers `callback` for every later changed report (anything but generated_at differs from the
  // previous one). `current` is the report at registration, if any, so a watcher sends it first and then
  // misses nothing. After Unsubscribe returns, the callback is not running and never runs again.
  struct Subscription {
    uint64_t id = 0;
    std::optional<clm::v1::CadenceReport> current;
  };
  Subscription Subscribe(ReportCallback callback);
  void Unsubscribe(uint64_t id);

  // Recorded decisions, newest first, at most `limit` (and at most policy.monitor.history_limit).
  std::vector<clm::v1::MonitorDecision> History(size_t limit) const;

  clm::v1::LearningMode mode() const;
  std::optional<clm::v1::ModeChange> last_mode_change() const;
  const clm::v1::CadencePolicy& policy() const { return policy_; }  // resolved
  MonitorCounters counters() const;
  // The calibration job the monitor submitted and still follows; empty when none.
  std::string pending_job() const;
  // Incremented each time a changed report is published.
  uint64_t report_version() const;

 private:
  // Work for the monitor thread: `run` executes it, `cancel` completes it with an error instead.
  struct Request {
    std::function<void()> run;
    std::function<void(absl::Status)> cancel;
  };

  Monitor(clm::v1::CadencePolicy policy, Dependencies deps);
  absl::Status LoadState();
  void Loop();
  void Enqueue(Request request);
  clm::v1::MonitorDecision Decide(const clm::v1::CadenceReport& report, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(eval_mu_);
  clm::v1::MonitorDecision FollowPendingJob(const std::string& job_id, clm::v1::MonitorDecision decision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(eval_mu_);
  void SetPendingJob(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(eval_mu_);
  void Record(clm::v1::MonitorDecision* decision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(eval_mu_);
  clm::v1::CadenceReport ReportFromSnapshot(const SourceSnapshot& snapshot, absl::Time now);
  void Publish(const clm::v1::CadenceReport& report) ABSL_EXCLUSIVE_LOCKS_REQUIRED(eval_mu_);

  const clm::v1::CadencePolicy policy_;
  const Dependencies deps_;
  const absl::Duration interval_;
  const absl::Duration debounce_;
  const size_t history_limit_;

  // Serializes the paths that evaluate and write state (RunOnce, SetMode), so decisions and published
  // reports are ordered. Held across I/O: never taken on a non-blocking path.
  absl::Mutex eval_mu_;
  std::optional<SourceSnapshot> last_snapshot_ ABSL_GUARDED_BY(eval_mu_);
  uint64_t next_decision_id_ ABSL_GUARDED_BY(eval_mu_) = 1;

  // State read by the non-blocking accessors. Held only for copies.
  mutable absl::Mutex state_mu_ ABSL_ACQUIRED_AFTER(eval_mu_, subs_mu_);
  clm::v1::LearningMode mode_ ABSL_GUARDED_BY(state_mu_);
  std::optional<clm::v1::ModeChange> last_mode_change_ ABSL_GUARDED_BY(state_mu_);
  std::optional<clm::v1::CadenceReport> current_ ABSL_GUARDED_BY(state_mu_);
  uint64_t version_ ABSL_GUARDED_BY(state_mu_) = 0;
  std::deque<clm::v1::MonitorDecision> history_ ABSL_GUARDED_BY(state_mu_);  // oldest first
  std::string pending_job_ ABSL_GUARDED_BY(state_mu_);

  // Subscribers; held while delivering, so Unsubscribe waits out a running callback.
  absl::Mutex subs_mu_ ABSL_ACQUIRED_AFTER(eval_mu_);
  std::map<uint64_t, ReportCallback> subscribers_ ABSL_GUARDED_BY(subs_mu_);
  uint64_t next_subscriber_id_ ABSL_GUARDED_BY(subs_mu_) = 1;

  // The thread's wake-up state. Never held across I/O or callbacks.
  absl::Mutex loop_mu_ ABSL_ACQUIRED_AFTER(eval_mu_);
  absl::CondVar loop_cv_;
  bool started_ ABSL_GUARDED_BY(loop_mu_) = false;
  bool running_ ABSL_GUARDED_BY(loop_mu_) = false;
  bool stop_ ABSL_GUARDED_BY(loop_mu_) = false;
  std::deque<Request> queue_ ABSL_GUARDED_BY(loop_mu_);
  std::atomic<bool> nudged_{false};
  std::thread thread_;

  std::atomic<uint64_t> evaluations_{0};
  std::atomic<uint64_t> evaluation_errors_{0};
  std::atomic<uint64_t> actions_{0};
  std::atomic<uint64_t> skips_{0};
  std::atomic<uint64_t> reports_published_{0};
};

}  // namespace clm::cadence

#endif  // CLM_LIB_CADENCE_MONITOR_H_
