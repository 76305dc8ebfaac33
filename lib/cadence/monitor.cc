#include "lib/cadence/monitor.h"

#include "google/protobuf/util/time_util.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/message_differencer.h"
#include "lib/cadence/policy.h"
#include "spdlog/spdlog.h"

namespace clm::cadence {
namespace {

using ::clm::v1::CadenceReport;
using ::clm::v1::LearningMode;
using ::clm::v1::ModeChange;
using ::clm::v1::MonitorDecision;

constexpr size_t kMaxQueuedRequests = 256;
// Readers waiting for one report-only evaluation cost a callback each; bounded all the same.
constexpr size_t kMaxWaiters = 4096;
constexpr size_t kMaxChangedByBytes = 128;
constexpr size_t kMaxReasonBytes = 1024;

void SetTime(absl::Time t, google::protobuf::Timestamp* ts) {
  *ts = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

bool IsAutomatic(LearningMode mode) {
  return mode == clm::v1::AUTO_CALIBRATE || mode == clm::v1::AUTO_SHADOW;
}

// Two decisions are "the same" when an operator would read them as one continuing state; the counts and
// the time are deliberately left out.
bool SameDecision(const MonitorDecision& a, const MonitorDecision& b) {
  return a.mode() == b.mode() && a.fired() == b.fired() && a.trigger() == b.trigger() &&
         a.action() == b.action() && a.operation() == b.operation() && a.reason() == b.reason() &&
         a.job_id() == b.job_id();
}

bool SameReport(const CadenceReport& a, const CadenceReport& b) {
  CadenceReport x = a;
  CadenceReport y = b;
  x.clear_generated_at();
  y.clear_generated_at();
  return google::protobuf::util::MessageDifferencer::Equals(x, y);
}

std::string ActionName(clm::v1::MonitorAction action) {
  switch (action) {
    case clm::v1::MONITOR_ACTION_ACTED:
      return "ACTED";
    case clm::v1::MONITOR_ACTION_SKIPPED:
      return "SKIPPED";
    default:
      return "NONE";
  }
}

std::chrono::steady_clock::duration ToChrono(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

}  // namespace

absl::StatusOr<std::unique_ptr<Monitor>> Monitor::Create(const clm::v1::CadencePolicy& policy,
                                                         Dependencies deps) {
  if (deps.source == nullptr || deps.state == nullptr || deps.clock == nullptr) {
    return absl::InvalidArgumentError("cadence monitor: source, state and clock are required");
  }
  absl::StatusOr<clm::v1::CadencePolicy> resolved = ResolvePolicy(policy);
  if (!resolved.ok()) return resolved.status();
  std::unique_ptr<Monitor> monitor(new Monitor(*std::move(resolved), deps));
  if (absl::Status s = monitor->LoadState(); !s.ok()) return s;
  return monitor;
}

Monitor::Monitor(clm::v1::CadencePolicy policy, Dependencies deps)
    : policy_(std::move(policy)),
      deps_(deps),
      interval_(absl::Seconds(policy_.monitor().interval_seconds())),
      debounce_(absl::Milliseconds(policy_.monitor().nudge_debounce_ms())),
      history_limit_(static_cast<size_t>(policy_.monitor().history_limit())),
      mode_(policy_.default_mode()) {}

Monitor::~Monitor() { Stop(); }

absl::Status Monitor::LoadState() {
  absl::StatusOr<std::vector<ModeChange>> changes = deps_.state->LoadModeChanges(1);
  if (!changes.ok()) {
    return absl::Status(changes.status().code(),
                        absl::StrCat("loading the cadence mode: ", changes.status().message()));
  }
  absl::StatusOr<std::vector<MonitorDecision>> decisions = deps_.state->LoadDecisions(history_limit_);
  if (!decisions.ok()) {
    return absl::Status(decisions.status().code(),
                        absl::StrCat("loading the monitor history: ", decisions.status().message()));
  }
  absl::StatusOr<std::string> pending = deps_.state->LoadPendingJob();
  if (!pending.ok()) {
    return absl::Status(pending.status().code(),
                        absl::StrCat("loading the pending job: ", pending.status().message()));
  }
  absl::MutexLock eval(&eval_mu_);
  absl::MutexLock lock(&state_mu_);
  // The operator's last choice outlives restarts and config edits: it wins over policy.default_mode.
  if (!changes->empty()) {
    last_mode_change_ = changes->front();
    mode_ = changes->front().to_mode();
  }
  for (auto it = decisions->rbegin(); it != decisions->rend(); ++it) history_.push_back(*it);
  if (!history_.empty()) next_decision_id_ = history_.back().id() + 1;
  pending_job_ = *pending;
  return absl::OkStatus();
}

clm::v1::CadenceReport Monitor::ReportFromSnapshot(const SourceSnapshot& snapshot, absl::Time now) {
  std::string pending;
  LearningMode mode;
  {
    absl::MutexLock lock(&state_mu_);
    pending = pending_job_;
    mode = mode_;
  }
  CadenceReport report = Evaluate(policy_, snapshot.data, snapshot.training, mode, now);
  // The evaluator cannot know about the monitor's own job; while one is in flight, waiting for it is the
  // next thing to do, not submitting another.
  if (!pending.empty()) {
    report.set_next_action(absl::StrCat(
        "Waiting for calibration job ", pending, " submitted by the monitor",
        mode == clm::v1::AUTO_SHADOW ? "; it is approved into shadow if it passes safety validation" : ""));
  }
  return report;
}

absl::StatusOr<MonitorDecision> Monitor::RunOnce() {
  absl::MutexLock eval(&eval_mu_);
  const absl::Time now = deps_.clock->Now();
  evaluations_.fetch_add(1, std::memory_order_relaxed);
  // Read before loading: the snapshot sees at least every change noted so far.
  const uint64_t covers = noted_changes_.load(std::memory_order_acquire);
  absl::StatusOr<SourceSnapshot> snapshot = deps_.source->Load(Scope{});
  if (!snapshot.ok()) {
    evaluation_errors_.fetch_add(1, std::memory_order_relaxed);
    skips_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("cadence: cannot read the data set: {}", snapshot.status().ToString());
    FailWaiters(covers, snapshot.status());
    MonitorDecision decision;
    SetTime(now, decision.mutable_decided_at());
    decision.set_mode(mode());
    decision.set_action(clm::v1::MONITOR_ACTION_SKIPPED);
    decision.set_reason(absl::StrCat("cannot read the data set: ", snapshot.status().message()));
    Record(&decision);
    return snapshot.status();
  }
  last_snapshot_ = *snapshot;
  last_snapshot_covers_ = covers;
  const CadenceReport evaluated = ReportFromSnapshot(*snapshot, now);
  MonitorDecision decision = Decide(evaluated, now);
  Record(&decision);
  // Acting may have started or finished a job; the published report says what is next after this decision.
  const CadenceReport report = ReportFromSnapshot(*snapshot, now);
  spdlog::info("cadence: {}", report.summary());
  Publish(report, covers);
  return decision;
}

void Monitor::Refresh() {
  absl::MutexLock eval(&eval_mu_);
  const uint64_t covers = noted_changes_.load(std::memory_order_acquire);
  {
    // A reader waits only while the published report covers less than what was noted when it asked; if an
    // evaluation since then covers everything noted by now, it has already been answered.
    absl::MutexLock lock(&state_mu_);
    if (current_.has_value() && covered_ >= covers) return;
  }
  refreshes_.fetch_add(1, std::memory_order_relaxed);
  const absl::Time now = deps_.clock->Now();
  absl::StatusOr<SourceSnapshot> snapshot = deps_.source->Load(Scope{});
  if (!snapshot.ok()) {
    evaluation_errors_.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("cadence: cannot read the data set for a reader: {}", snapshot.status().ToString());
    FailWaiters(covers, snapshot.status());
    return;
  }
  // Report only: the decision (and its log line) waits for the debounced evaluation, which loads again.
  last_snapshot_ = *snapshot;
  last_snapshot_covers_ = covers;
  Publish(ReportFromSnapshot(*snapshot, now), covers);
}

void Monitor::FailWaiters(uint64_t covers, const absl::Status& error) {
  std::vector<Waiter> failed;
  {
    absl::MutexLock lock(&state_mu_);
    auto split = std::stable_partition(waiters_.begin(), waiters_.end(),
                                       [covers](const Waiter& w) { return w.covers > covers; });
    failed.assign(std::make_move_iterator(split), std::make_move_iterator(waiters_.end()));
    waiters_.erase(split, waiters_.end());
  }
  for (Waiter& w : failed) w.done(error);
}

MonitorDecision Monitor::Decide(const CadenceReport& report, absl::Time now) {
  MonitorDecision d;
  SetTime(now, d.mutable_decided_at());
  d.set_mode(report.mode());
  d.set_fired(report.trigger_fired());
  const clm::v1::TriggerStatus& trigger =
      report.trigger_fired() ? report.fired_trigger() : report.triggers(0);
  if (report.trigger_fired()) d.set_trigger(trigger.type());
  d.set_new_trades_since_training(trigger.new_trades_since_training());
  d.set_threshold(trigger.threshold());
  d.set_action(clm::v1::MONITOR_ACTION_NONE);

  const std::string pending = pending_job();
  if (!pending.empty()) return FollowPendingJob(pending, std::move(d));

  if (!report.trigger_fired()) {
    d.set_reason("no trigger fired");
    return d;
  }
  d.set_operation(clm::v1::MONITOR_OPERATION_SUBMIT_CALIBRATION);
  d.set_action(clm::v1::MONITOR_ACTION_SKIPPED);
  if (!IsAutomatic(report.mode())) {
    d.set_reason(
        absl::StrCat(ModeName(report.mode()), ": reporting only; an operator submits the calibration job"));
    return d;
  }
  if (!report.ready()) {
    if (!report.all_gates_passed()) {
      std::vector<std::string> failing;
      for (const auto& g : report.gates()) {
        if (!g.passed()) failing.push_back(g.name());
      }
      d.set_reason(absl::StrCat("not ready: gates not passed: ", absl::StrJoin(failing, ", ")));
    } else {
      d.set_reason("not ready: CALIBRATION not authorized");
    }
    return d;
  }
  if (deps_.launcher == nullptr) {
    d.set_reason("no job launcher configured");
    return d;
  }
  const std::string why = absl::StrCat(ModeName(report.mode()), ": ", TriggerName(trigger.type()),
                                       " trigger fired (", trigger.detail(), ")");
  absl::StatusOr<std::string> job = deps_.launcher->SubmitCalibration(why);
  if (!job.ok()) {
    evaluation_errors_.fetch_add(1, std::memory_order_relaxed);
    d.set_reason(absl::StrCat("submitting the calibration job failed: ", job.status().ToString()));
    return d;
  }
  SetPendingJob(*job);
  d.set_action(clm::v1::MONITOR_ACTION_ACTED);
  d.set_job_id(*job);
  d.set_reason(absl::StrCat("submitted calibration job: ", TriggerName(trigger.type()), " trigger fired"));
  return d;
}

MonitorDecision Monitor::FollowPendingJob(const std::string& job_id, MonitorDecision d) {
  d.set_job_id(job_id);
  const bool shadow = d.mode() == clm::v1::AUTO_SHADOW;
  if (deps_.launcher == nullptr) {
    d.set_action(clm::v1::MONITOR_ACTION_SKIPPED);
    d.set_reason("no job launcher configured to follow the pending job");
    return d;
  }
  absl::StatusOr<JobStatus> status = deps_.launcher->GetJobStatus(job_id);
  if (!status.ok()) {
    d.set_action(clm::v1::MONITOR_ACTION_SKIPPED);
    if (absl::IsNotFound(status.status())) {
      SetPendingJob("");
      d.set_reason("job unknown to the job system; no longer following it");
    } else {
      evaluation_errors_.fetch_add(1, std::memory_order_relaxed);
      d.set_reason(absl::StrCat("cannot read the job's status: ", status.status().ToString()));
    }
    return d;
  }
  switch (status->state) {
    case JobStatus::State::kQueued:
    case JobStatus::State::kRunning:
      // Submitting again would train twice on the same trades; the trigger is answered by this job.
      if (d.fired()) {
        d.set_action(clm::v1::MONITOR_ACTION_SKIPPED);
        d.set_operation(clm::v1::MONITOR_OPERATION_SUBMIT_CALIBRATION);
      }
      d.set_reason("waiting for the calibration job submitted by the monitor");
      return d;
    case JobStatus::State::kFailed:
      SetPendingJob("");
      d.set_action(clm::v1::MONITOR_ACTION_SKIPPED);
      d.set_operation(shadow ? clm::v1::MONITOR_OPERATION_APPROVE_SHADOW
                             : clm::v1::MONITOR_OPERATION_UNSPECIFIED);
      d.set_reason(absl::StrCat("calibration job failed: ", status->message));
      return d;
    case JobStatus::State::kSucceeded:
      break;
  }
  d.set_operation(clm::v1::MONITOR_OPERATION_APPROVE_SHADOW);
  d.set_action(clm::v1::MONITOR_ACTION_SKIPPED);
  if (!shadow) {
    SetPendingJob("");
    d.set_reason(absl::StrCat("calibration job succeeded; ", ModeName(d.mode()),
                              " leaves approval into shadow to an operator"));
    return d;
  }
  if (!status->deployment_ready) {
    SetPendingJob("");
    d.set_reason(absl::StrCat("calibration job succeeded but failed safety validation (not deployment ready",
                              status->message.empty() ? "" : ": ", status->message,
                              "); not approved into shadow"));
    return d;
  }
  if (absl::Status s = deps_.launcher->ApproveIntoShadow(
          job_id, "AUTO_SHADOW: succeeded and deployment ready (passed safety validation)");
      !s.ok()) {
    // Kept pending: the next evaluation tries the approval again.
    evaluation_errors_.fetch_add(1, std::memory_order_relaxed);
    d.set_reason(absl::StrCat("approving into shadow failed: ", s.ToString()));
    return d;
  }
  SetPendingJob("");
  d.set_action(clm::v1::MONITOR_ACTION_ACTED);
  d.set_reason("approved into shadow: succeeded and deployment ready");
  return d;
}

void Monitor::SetPendingJob(const std::string& job_id) {
  if (absl::Status s = deps_.state->SavePendingJob(job_id); !s.ok()) {
    // The in-memory copy still prevents a second submission while this process runs.
    spdlog::error("cadence: persisting the pending job '{}' failed: {}", job_id, s.ToString());
  }
  absl::MutexLock lock(&state_mu_);
  pending_job_ = job_id;
}

void Monitor::Record(MonitorDecision* decision) {
  if (decision->action() == clm::v1::MONITOR_ACTION_ACTED) actions_.fetch_add(1, std::memory_order_relaxed);
  if (decision->action() == clm::v1::MONITOR_ACTION_SKIPPED) skips_.fetch_add(1, std::memory_order_relaxed);
  {
    absl::MutexLock lock(&state_mu_);
    if (!history_.empty() && SameDecision(history_.back(), *decision)) {
      decision->set_id(history_.back().id());
      return;
    }
    decision->set_id(next_decision_id_++);
    history_.push_back(*decision);
    while (history_.size() > history_limit_) history_.pop_front();
  }
  if (decision->action() == clm::v1::MONITOR_ACTION_NONE) {
    spdlog::debug("cadence monitor: {} ({})", ActionName(decision->action()), decision->reason());
  } else {
    spdlog::info("cadence monitor: {} {}{} ({})", ActionName(decision->action()), decision->reason(),
                 decision->job_id().empty() ? "" : absl::StrCat(" [job ", decision->job_id(), "]"),
                 ModeName(decision->mode()));
  }
  if (absl::Status s = deps_.state->AppendDecision(*decision); !s.ok()) {
    spdlog::error("cadence: persisting monitor decision {} failed: {}", decision->id(), s.ToString());
  }
}

void Monitor::Publish(const CadenceReport& report, uint64_t covers) {
  std::vector<Waiter> answered;
  {
    // subs_mu_ is held from the update to the delivery, so a concurrent Subscribe sees either the old
    // report and this delivery, or this report as its `current` and no delivery: never both, never neither.
    absl::MutexLock subs(&subs_mu_);
    bool changed = true;
    {
      absl::MutexLock lock(&state_mu_);
      // Unchanged, the report is still stored: generated_at stays fresh for CurrentReport.
      changed = !current_.has_value() || !SameReport(*current_, report);
      current_ = report;
      covered_ = std::max(covered_, covers);
      if (changed) ++version_;
      const uint64_t covered = covered_;
      auto split = std::stable_partition(waiters_.begin(), waiters_.end(),
                                         [covered](const Waiter& w) { return w.covers > covered; });
      answered.assign(std::make_move_iterator(split), std::make_move_iterator(waiters_.end()));
      waiters_.erase(split, waiters_.end());
    }
    if (changed) reports_published_.fetch_add(1, std::memory_order_relaxed);
    for (auto& [id, subscriber] : subscribers_) {
      if (subscriber.owed) {
        // Nothing older than the changes noted before it subscribed; then this report even if unchanged.
        if (subscriber.owed_covers > covers) continue;
        subscriber.owed = false;
      } else if (!changed) {
        continue;
      }
      subscriber.callback(report);
    }
  }
  for (Waiter& w : answered) w.done(report);
}

absl::Status Monitor::Start() {
  {
    absl::MutexLock lock(&loop_mu_);
    if (started_) return absl::FailedPreconditionError("cadence monitor already started");
    started_ = true;
  }
  // The first evaluation covers any nudge that came before the thread existed.
  nudged_.store(false, std::memory_order_release);
  if (absl::StatusOr<MonitorDecision> first = RunOnce(); !first.ok()) {
    spdlog::warn("cadence: first evaluation failed, retrying every {}s: {}",
                 policy_.monitor().interval_seconds(), first.status().ToString());
  }
  {
    absl::MutexLock lock(&loop_mu_);
    running_ = true;
  }
  thread_ = std::thread([this] { Loop(); });
  spdlog::info("cadence monitor started: every {}s, mode {}", policy_.monitor().interval_seconds(),
               ModeName(mode()));
  return absl::OkStatus();
}

void Monitor::Stop() {
  std::deque<Request> abandoned;
  {
    absl::MutexLock lock(&loop_mu_);
    if (!running_) return;
    stop_ = true;
    loop_cv_.SignalAll();
  }
  thread_.join();
  {
    absl::MutexLock lock(&loop_mu_);
    running_ = false;
    abandoned.swap(queue_);
  }
  for (Request& r : abandoned) r.cancel(absl::UnavailableError("cadence monitor stopped"));
  // A reader that registered before stop_ was set is here; one that came later takes itself back.
  std::vector<Waiter> waiting;
  {
    absl::MutexLock lock(&state_mu_);
    waiting.swap(waiters_);
  }
  for (Waiter& w : waiting) w.done(absl::UnavailableError("cadence monitor stopped"));
  spdlog::info("cadence monitor stopped");
}

void Monitor::Nudge() {
  // Noted first: a reader that starts once this returns waits for a snapshot loaded after it.
  noted_changes_.fetch_add(1, std::memory_order_acq_rel);
  AskForDecision();
}

void Monitor::AskForDecision() {
  // Only the first nudge of a burst touches the mutex; the rest are one atomic exchange.
  if (nudged_.exchange(true, std::memory_order_acq_rel)) return;
  absl::MutexLock lock(&loop_mu_);
  loop_cv_.Signal();
}

void Monitor::Loop() {
  using SteadyClock = std::chrono::steady_clock;
  SteadyClock::time_point next_due = SteadyClock::now() + ToChrono(interval_);
  // While a burst of nudges is settling: when it has settled.
  bool settling = false;
  SteadyClock::time_point settled{};
  while (true) {
    std::deque<Request> work;
    bool evaluate = false;
    bool refresh = false;
    {
      absl::MutexLock lock(&loop_mu_);
      while (true) {
        if (stop_) return;
        // Queued requests and readers are served at once, also in the middle of a debounce.
        if (!queue_.empty() || refresh_wanted_) break;
        const SteadyClock::time_point now = SteadyClock::now();
        // Let the rest of the burst arrive, so one evaluation decides on it.
        if (!settling && nudged_.load(std::memory_order_acquire)) {
          settling = true;
          settled = now + ToChrono(debounce_);
        }
        if (settling && now >= settled) break;
        if (now >= next_due) break;
        const SteadyClock::time_point until = settling ? std::min(settled, next_due) : next_due;
        loop_cv_.WaitWithTimeout(&loop_mu_, absl::FromChrono(until - now));
      }
      const SteadyClock::time_point now = SteadyClock::now();
      if (settling && now >= settled) {
        settling = false;
        // Cleared before evaluating: a nudge during the evaluation asks for another one.
        nudged_.store(false, std::memory_order_release);
        evaluate = true;
      }
      if (now >= next_due) evaluate = true;
      refresh = refresh_wanted_;
      refresh_wanted_ = false;
      work.swap(queue_);
    }
    for (Request& r : work) r.run();
    if (evaluate) {
      // Errors are logged and recorded by RunOnce; the next interval retries. Its report answers readers too.
      (void)RunOnce();
      next_due = SteadyClock::now() + ToChrono(interval_);
    } else if (refresh) {
      Refresh();
    }
  }
}

bool Monitor::RequestRefresh() {
  absl::MutexLock lock(&loop_mu_);
  if (!running_ || stop_) return false;
  refresh_wanted_ = true;
  loop_cv_.Signal();
  return true;
}

void Monitor::Enqueue(Request request) {
  absl::Status rejected;
  {
    absl::MutexLock lock(&loop_mu_);
    if (!running_ || stop_) {
      rejected = absl::UnavailableError("cadence monitor is not running");
    } else if (queue_.size() >= kMaxQueuedRequests) {
      rejected = absl::ResourceExhaustedError("cadence monitor is busy; retry later");
    } else {
      queue_.push_back(std::move(request));
      loop_cv_.Signal();
      return;
    }
  }
  request.cancel(rejected);
}

absl::StatusOr<ModeChange> Monitor::SetMode(LearningMode mode, const std::string& changed_by,
                                            const std::string& reason) {
  if (mode == clm::v1::LEARNING_MODE_UNSPECIFIED || !clm::v1::LearningMode_IsValid(mode)) {
    return absl::InvalidArgumentError("mode: must be LOGGING_ONLY, AUTO_CALIBRATE or AUTO_SHADOW");
  }
  if (changed_by.empty() || changed_by.size() > kMaxChangedByBytes) {
    return absl::InvalidArgumentError(absl::StrCat("changed_by: required, 1..", kMaxChangedByBytes,
                                                   " bytes naming who makes the change, got ",
                                                   changed_by.size(), " bytes"));
  }
  if (reason.empty() || reason.size() > kMaxReasonBytes) {
    return absl::InvalidArgumentError(absl::StrCat("reason: required, 1..", kMaxReasonBytes,
                                                   " bytes saying why, got ", reason.size(), " bytes"));
  }
  if (IsAutomatic(mode) && deps_.launcher == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("mode ", ModeName(mode), " needs a job system; none is configured"));
  }
  absl::MutexLock eval(&eval_mu_);
  const absl::Time now = deps_.clock->Now();
  ModeChange change;
  SetTime(now, change.mutable_changed_at());
  change.set_from_mode(this->mode());
  change.set_to_mode(mode);
  change.set_changed_by(changed_by);
  change.set_reason(reason);
  if (absl::Status s = deps_.state->AppendModeChange(change); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("persisting the mode change: ", s.message()));
  }
  {
    absl::MutexLock lock(&state_mu_);
    mode_ = mode;
    last_mode_change_ = change;
  }
  spdlog::info("cadence mode {} -> {} by {}: {}", ModeName(change.from_mode()), ModeName(mode), changed_by,
               reason);
  if (last_snapshot_.has_value()) Publish(ReportFromSnapshot(*last_snapshot_, now), last_snapshot_covers_);
  // The data did not change (the report above already shows the mode): only a decision is due.
  AskForDecision();
  return change;
}

void Monitor::SetModeAsync(LearningMode mode, std::string changed_by, std::string reason,
                           std::function<void(absl::StatusOr<ModeChange>)> done) {
  auto shared_done = std::make_shared<std::function<void(absl::StatusOr<ModeChange>)>>(std::move(done));
  Enqueue(Request{[this, mode, changed_by = std::move(changed_by), reason = std::move(reason), shared_done] {
                    (*shared_done)(SetMode(mode, changed_by, reason));
                  },
                  [shared_done](absl::Status s) { (*shared_done)(std::move(s)); }});
}

absl::StatusOr<CadenceReport> Monitor::CurrentReport() const {
  absl::MutexLock lock(&state_mu_);
  if (!current_.has_value()) return absl::UnavailableError("the cadence monitor has not evaluated yet");
  return *current_;
}

absl::StatusOr<CadenceReport> Monitor::FreshReport() {
  const uint64_t wanted = noted_changes_.load(std::memory_order_acquire);
  {
    absl::MutexLock lock(&state_mu_);
    if (current_.has_value() && covered_ >= wanted) return *current_;
  }
  // Not published: only evaluations under eval_mu_ publish, so reports reach subscribers in order.
  return EvaluateScope(Scope{});
}

void Monitor::FreshReportAsync(ReportDone done) {
  const uint64_t wanted = noted_changes_.load(std::memory_order_acquire);
  std::optional<CadenceReport> ready;
  uint64_t waiter = 0;
  {
    absl::MutexLock lock(&state_mu_);
    if (current_.has_value() && covered_ >= wanted) {
      ready = current_;
    } else if (waiters_.size() < kMaxWaiters) {
      waiter = next_waiter_id_++;
      waiters_.push_back(Waiter{waiter, wanted, std::move(done)});
    }
  }
  if (ready.has_value()) {
    done(*std::move(ready));
    return;
  }
  if (waiter == 0) {
    done(absl::ResourceExhaustedError("cadence monitor is busy; retry later"));
    return;
  }
  if (RequestRefresh()) return;
  // Not running: take the request back, unless Stop or a publish already answered it.
  ReportDone mine;
  {
    absl::MutexLock lock(&state_mu_);
    auto it = std::find_if(waiters_.begin(), waiters_.end(), [waiter](const Waiter& w) { return w.id == waiter; });
    if (it != waiters_.end()) {
      mine = std::move(it->done);
      waiters_.erase(it);
    }
  }
  if (mine) mine(absl::UnavailableError("cadence monitor is not running"));
}

absl::StatusOr<CadenceReport> Monitor::EvaluateScope(const Scope& scope) {
  absl::StatusOr<SourceSnapshot> snapshot = deps_.source->Load(scope);
  if (!snapshot.ok()) return snapshot.status();
  // All trades: the same report the monitor publishes, including its own pending job.
  if (scope.all()) return ReportFromSnapshot(*snapshot, deps_.clock->Now());
  return Evaluate(policy_, snapshot->data, snapshot->training, mode(), deps_.clock->Now(), scope.symbol,
                  scope.model_id);
}

void Monitor::EvaluateScopeAsync(Scope scope, std::function<void(absl::StatusOr<CadenceReport>)> done) {
  auto shared_done = std::make_shared<std::function<void(absl::StatusOr<CadenceReport>)>>(std::move(done));
  Enqueue(Request{[this, scope = std::move(scope), shared_done] { (*shared_done)(EvaluateScope(scope)); },
                  [shared_done](absl::Status s) { (*shared_done)(std::move(s)); }});
}

Monitor::Subscription Monitor::Subscribe(ReportCallback callback) {
  const uint64_t wanted = noted_changes_.load(std::memory_order_acquire);
  Subscription subscription;
  Subscriber subscriber{std::move(callback), false, 0};
  {
    absl::MutexLock subs(&subs_mu_);
    subscription.id = next_subscriber_id_++;
    {
      absl::MutexLock lock(&state_mu_);
      if (current_.has_value() && covered_ >= wanted) {
        subscription.current = current_;
      } else {
        subscriber.owed = true;
        subscriber.owed_covers = wanted;
      }
    }
    subscribers_.emplace(subscription.id, std::move(subscriber));
  }
  // Without a running thread the next RunOnce brings the report.
  if (!subscription.current.has_value()) RequestRefresh();
  return subscription;
}

void Monitor::Unsubscribe(uint64_t id) {
  absl::MutexLock subs(&subs_mu_);
  subscribers_.erase(id);
}

std::vector<MonitorDecision> Monitor::History(size_t limit) const {
  absl::MutexLock lock(&state_mu_);
  std::vector<MonitorDecision> out;
  for (auto it = history_.rbegin(); it != history_.rend() && out.size() < limit; ++it) out.push_back(*it);
  return out;
}

LearningMode Monitor::mode() const {
  absl::MutexLock lock(&state_mu_);
  return mode_;
}

std::optional<ModeChange> Monitor::last_mode_change() const {
  absl::MutexLock lock(&state_mu_);
  return last_mode_change_;
}

MonitorCounters Monitor::counters() const {
  MonitorCounters c;
  c.evaluations = evaluations_.load(std::memory_order_relaxed);
  c.evaluation_errors = evaluation_errors_.load(std::memory_order_relaxed);
  c.actions = actions_.load(std::memory_order_relaxed);
  c.skips = skips_.load(std::memory_order_relaxed);
  c.reports_published = reports_published_.load(std::memory_order_relaxed);
  c.refreshes = refreshes_.load(std::memory_order_relaxed);
  return c;
}

std::string Monitor::pending_job() const {
  absl::MutexLock lock(&state_mu_);
  return pending_job_;
}

uint64_t Monitor::report_version() const {
  absl::MutexLock lock(&state_mu_);
  return version_;
}

}  // namespace clm::cadence
