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
  uint64_t refreshes = 0;          // report-only evaluations for readers that needed a newer report
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
// Read your writes: whoever changes what the source reads (a commit of new trades, a job's end) calls
// Nudge after the change is visible and before telling its own caller (the ingest ack). Each Nudge counts
// one noted change; every report remembers how many noted changes its snapshot covers (the count read
// before loading it). FreshReport, FreshReportAsync and Subscribe's first report cover every change noted
// before they were called: the published report when it already does, else a report-only evaluation
// (no decision, no log line, no debounce) made for them. The debounce delays only the decision, its
// actions and its log line.
//
// Threading contract:
// - Every public method is thread-safe.
// - Non-blocking (short mutexes only, never I/O), safe on gRPC reactor threads: Nudge, CurrentReport,
//   FreshReportAsync, History, mode, last_mode_change, policy, counters, pending_job, report_version,
//   Subscribe, Unsubscribe, SetModeAsync, EvaluateScopeAsync.
// - Blocking (store and job-system I/O): RunOnce, SetMode, EvaluateScope, FreshReport, Start, Stop. Call
//   them from worker threads, main or tests.
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

  // Notes a change of the data (call it once the change is visible to the source, before acknowledging it)
  // and asks for an evaluation soon: the thread waits policy.monitor.nudge_debounce_ms so a burst of nudges
  // causes one decision. Readers never wait for that: see FreshReport. Cheap (two atomic operations, and a
  // short lock only on the first nudge of a burst); never waits for an evaluation. Without a running
  // thread only the change is noted.
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

  // The latest published all-trades report (no I/O), however old. UNAVAILABLE before the first successful
  // evaluation. Readers that must see what was acknowledged to them use FreshReport or FreshReportAsync.
  absl::StatusOr<clm::v1::CadenceReport> CurrentReport() const;

  // The all-trades report covering every change noted (Nudge) before the call: the published one when it
  // does, else one evaluated on the calling thread (store I/O; it reports only and is not published).
  // Safe on the monitor's own thread, e.g. from a JobLauncher call during RunOnce.
  absl::StatusOr<clm::v1::CadenceReport> FreshReport();
  // The same without blocking: `done` runs at once on the caller's thread when the published report
  // covers every change noted before the call; otherwise the monitor thread evaluates at once (report
  // only: no decision, no debounce), publishes the report and then calls `done`. UNAVAILABLE when the
  // thread is not running, RESOURCE_EXHAUSTED when too many readers wait, the source's error when loading
  // fails.
  void FreshReportAsync(std::function<void(absl::StatusOr<clm::v1::CadenceReport>)> done);

  // A fresh evaluation of `scope` with the current mode. Reports only: never acts, records or publishes.
  absl::StatusOr<clm::v1::CadenceReport> EvaluateScope(const Scope& scope);
  // EvaluateScope on the monitor thread; completion as for SetModeAsync.
  void EvaluateScopeAsync(Scope scope, std::function<void(absl::StatusOr<clm::v1::CadenceReport>)> done);

  // Registers `callback` for every later changed report (anything but generated_at differs from the
  // previous one). `current` is the report at registration when it covers every change noted before the
  // call, so a watcher sends it first and then misses nothing. Otherwise `current` is empty, the monitor
  // evaluates at once (as for FreshReportAsync), and the first callback brings a report that covers those
  // changes, changed or not; no older report reaches the callback. After Unsubscribe returns, the callback
  // is not running and never runs again.
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
  using ReportDone = std::function<void(absl::StatusOr<clm::v1::CadenceReport>)>;
  // A FreshReportAsync caller waiting for a report that covers `covers` noted changes.
  struct Waiter {
    uint64_t id = 0;
    uint64_t covers = 0;
    ReportDone done;
  };
  struct Subscriber {
    ReportCallback callback;
    // Set until the subscriber got a report covering `owed_covers` noted changes (see Subscribe).
    bool owed = false;
    uint64_t owed_covers = 0;
  };

  Monitor(clm::v1::CadencePolicy policy, Dependencies deps);
  absl::Status LoadState();
  void Loop();
  void Enqueue(Request request);
  // Nudge without noting a change: a debounced evaluation, for the decision only.
  void AskForDecision();
  // Wakes the thread for a report-only evaluation; false when it is not running.
  bool RequestRefresh();
  // The report-only evaluation readers asked for, when the published report does not cover the noted
  // changes. Runs on the monitor thread.
  void Refresh();
  // Completes, with `error`, the waiters that asked for no more than `covers` noted changes.
  void FailWaiters(uint64_t covers, const absl::Status& error);
  clm::v1::MonitorDecision Decide(const clm::v1::CadenceReport& report, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(eval_mu_);
  clm::v1::MonitorDecision FollowPendingJob(const std::string& job_id, clm::v1::MonitorDecision decision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(eval_mu_);
  void SetPendingJob(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(eval_mu_);
  void Record(clm::v1::MonitorDecision* decision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(eval_mu_);
  clm::v1::CadenceReport ReportFromSnapshot(const SourceSnapshot& snapshot, absl::Time now);
  // `covers`: the noted changes the report's snapshot covers.
  void Publish(const clm::v1::CadenceReport& report, uint64_t covers) ABSL_EXCLUSIVE_LOCKS_REQUIRED(eval_mu_);

  const clm::v1::CadencePolicy policy_;
  const Dependencies deps_;
  const absl::Duration interval_;
  const absl::Duration debounce_;
  const size_t history_limit_;

  // Serializes the paths that evaluate and write state (RunOnce, SetMode), so decisions and published
  // reports are ordered. Held across I/O: never taken on a non-blocking path.
  absl::Mutex eval_mu_;
  std::optional<SourceSnapshot> last_snapshot_ ABSL_GUARDED_BY(eval_mu_);
  uint64_t last_snapshot_covers_ ABSL_GUARDED_BY(eval_mu_) = 0;
  uint64_t next_decision_id_ ABSL_GUARDED_BY(eval_mu_) = 1;

  // State read by the non-blocking accessors. Held only for copies.
  mutable absl::Mutex state_mu_ ABSL_ACQUIRED_AFTER(eval_mu_, subs_mu_);
  clm::v1::LearningMode mode_ ABSL_GUARDED_BY(state_mu_);
  std::optional<clm::v1::ModeChange> last_mode_change_ ABSL_GUARDED_BY(state_mu_);
  std::optional<clm::v1::CadenceReport> current_ ABSL_GUARDED_BY(state_mu_);
  uint64_t covered_ ABSL_GUARDED_BY(state_mu_) = 0;  // noted changes current_ covers
  uint64_t version_ ABSL_GUARDED_BY(state_mu_) = 0;
  // Readers waiting for a report that covers more than covered_; completed by the Publish that covers them.
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(state_mu_);
  uint64_t next_waiter_id_ ABSL_GUARDED_BY(state_mu_) = 1;
  std::deque<clm::v1::MonitorDecision> history_ ABSL_GUARDED_BY(state_mu_);  // oldest first
  std::string pending_job_ ABSL_GUARDED_BY(state_mu_);

  // Subscribers; held while delivering, so Unsubscribe waits out a running callback.
  absl::Mutex subs_mu_ ABSL_ACQUIRED_AFTER(eval_mu_);
  std::map<uint64_t, Subscriber> subscribers_ ABSL_GUARDED_BY(subs_mu_);
  uint64_t next_subscriber_id_ ABSL_GUARDED_BY(subs_mu_) = 1;

  // The thread's wake-up state. Never held across I/O or callbacks.
  absl::Mutex loop_mu_ ABSL_ACQUIRED_AFTER(eval_mu_);
  absl::CondVar loop_cv_;
  bool started_ ABSL_GUARDED_BY(loop_mu_) = false;
  bool running_ ABSL_GUARDED_BY(loop_mu_) = false;
  bool stop_ ABSL_GUARDED_BY(loop_mu_) = false;
  std::deque<Request> queue_ ABSL_GUARDED_BY(loop_mu_);
  bool refresh_wanted_ ABSL_GUARDED_BY(loop_mu_) = false;
  std::atomic<bool> nudged_{false};
  // Changes noted by Nudge so far. Readers compare it with covered_.
  std::atomic<uint64_t> noted_changes_{0};
  std::thread thread_;

  std::atomic<uint64_t> evaluations_{0};
  std::atomic<uint64_t> evaluation_errors_{0};
  std::atomic<uint64_t> actions_{0};
  std::atomic<uint64_t> skips_{0};
  std::atomic<uint64_t> reports_published_{0};
  std::atomic<uint64_t> refreshes_{0};
};

}  // namespace clm::cadence

#endif  // CLM_LIB_CADENCE_MONITOR_H_
