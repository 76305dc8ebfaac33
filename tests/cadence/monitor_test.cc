#include "lib/cadence/monitor.h"

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "lib/cadence/in_memory_state_store.h"
#include "lib/cadence/policy.h"
#include "tests/cadence/fakes.h"

namespace clm::cadence {
namespace {

using ::clm::v1::MonitorDecision;
using testing::FakeClock;
using testing::FakeLauncher;
using testing::FakeSource;

constexpr int64_t kDayUs = int64_t{86400} * 1'000'000;
constexpr int64_t kFirstUs = int64_t{1770397200} * 1'000'000;
// Long enough that the thread never evaluates on its own during a test; only Nudge and Start do.
constexpr int64_t kNeverSeconds = 86400;

SourceSnapshot Snapshot(uint64_t wins, uint64_t losses, uint64_t neutrals, uint64_t fresh) {
  SourceSnapshot s;
  s.data.wins = wins;
  s.data.losses = losses;
  s.data.neutrals = neutrals;
  s.data.total = wins + losses + neutrals;
  s.data.first_closed_at_us = kFirstUs;
  s.data.last_closed_at_us = kFirstUs + 32 * kDayUs / 10;
  s.data.symbols = {{"BTCUSDT", s.data.total}};
  s.data.new_trades_since_training = fresh;
  return s;
}

SourceSnapshot WorkedExample() { return Snapshot(288, 248, 212, 748); }

clm::v1::CadencePolicy PolicyWithMode(clm::v1::LearningMode mode) {
  clm::v1::CadencePolicy p;
  p.set_default_mode(mode);
  p.mutable_monitor()->set_interval_seconds(kNeverSeconds);
  p.mutable_monitor()->set_nudge_debounce_ms(0);
  return p;
}

class MonitorTest : public ::testing::Test {
 protected:
  MonitorTest() : clock_(absl::FromUnixMicros(kFirstUs + 4 * kDayUs)) { source_.Set(WorkedExample()); }

  std::unique_ptr<Monitor> Make(clm::v1::LearningMode mode, bool with_launcher = true) {
    return MakeWith(PolicyWithMode(mode), &state_, with_launcher);
  }
  std::unique_ptr<Monitor> MakeWith(const clm::v1::CadencePolicy& policy, CadenceStateStore* state,
                                    bool with_launcher = true) {
    absl::StatusOr<std::unique_ptr<Monitor>> m =
        Monitor::Create(policy, {&source_, state, &clock_, with_launcher ? &launcher_ : nullptr});
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }
  MonitorDecision Run(Monitor& m) {
    absl::StatusOr<MonitorDecision> d = m.RunOnce();
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *d : MonitorDecision();
  }

  FakeClock clock_;
  FakeSource source_;
  FakeLauncher launcher_;
  InMemoryCadenceStateStore state_;
};

TEST_F(MonitorTest, LoggingOnlyReportsAndNeverActs) {
  auto m = Make(clm::v1::LOGGING_ONLY);
  const MonitorDecision d = Run(*m);
  EXPECT_EQ(d.id(), 1u);
  EXPECT_EQ(d.mode(), clm::v1::LOGGING_ONLY);
  EXPECT_TRUE(d.fired());
  EXPECT_EQ(d.trigger(), clm::v1::TRIGGER_BATCH);
  EXPECT_EQ(d.new_trades_since_training(), 748u);
  EXPECT_EQ(d.threshold(), 100u);
  EXPECT_EQ(d.action(), clm::v1::MONITOR_ACTION_SKIPPED);
  EXPECT_EQ(d.operation(), clm::v1::MONITOR_OPERATION_SUBMIT_CALIBRATION);
  EXPECT_EQ(d.reason(), "LOGGING_ONLY: reporting only; an operator submits the calibration job");
  EXPECT_EQ(d.decided_at().seconds(), absl::ToUnixSeconds(clock_.Now()));
  EXPECT_TRUE(launcher_.submit_reasons().empty());

  absl::StatusOr<clm::v1::CadenceReport> report = m->CurrentReport();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ready());
  EXPECT_EQ(report->fired_trigger().detail(), "748/100 new trades");

  // The same decision again is the same state continuing: recorded once.
  clock_.Advance(absl::Minutes(5));
  EXPECT_EQ(Run(*m).id(), 1u);
  EXPECT_EQ(m->History(10).size(), 1u);
  EXPECT_EQ(state_.LoadDecisions(10)->size(), 1u);
  const MonitorCounters c = m->counters();
  EXPECT_EQ(c.evaluations, 2u);
  EXPECT_EQ(c.skips, 2u);
  EXPECT_EQ(c.actions, 0u);
  EXPECT_TRUE(launcher_.submit_reasons().empty());
}

TEST_F(MonitorTest, NothingDueIsANoneDecision) {
  source_.Set(Snapshot(288, 248, 212, 10));
  auto m = Make(clm::v1::AUTO_CALIBRATE);
  const MonitorDecision d = Run(*m);
  EXPECT_FALSE(d.fired());
  EXPECT_EQ(d.action(), clm::v1::MONITOR_ACTION_NONE);
  EXPECT_EQ(d.reason(), "no trigger fired");
  EXPECT_EQ(d.new_trades_since_training(), 10u);
  EXPECT_EQ(d.threshold(), 100u);
  EXPECT_TRUE(launcher_.submit_reasons().empty());
}

TEST_F(MonitorTest, AutoCalibrateSubmitsOnceAndLeavesShadowToAPerson) {
  auto m = Make(clm::v1::AUTO_CALIBRATE);
  MonitorDecision d = Run(*m);
  EXPECT_EQ(d.action(), clm::v1::MONITOR_ACTION_ACTED);
  EXPECT_EQ(d.operation(), clm::v1::MONITOR_OPERATION_SUBMIT_CALIBRATION);
  EXPECT_EQ(d.job_id(), "job-1");
  EXPECT_EQ(d.reason(), "submitted calibration job: BATCH trigger fired");
  ASSERT_EQ(launcher_.submit_reasons().size(), 1u);
  EXPECT_EQ(launcher_.submit_reasons()[0], "AUTO_CALIBRATE: BATCH trigger fired (748/100 new trades)");
  EXPECT_EQ(m->pending_job(), "job-1");
  EXPECT_EQ(*state_.LoadPendingJob(), "job-1");
  EXPECT_EQ(m->CurrentReport()->next_action(), "Waiting for calibration job job-1 submitted by the monitor");
  EXPECT_EQ(m->EvaluateScope({})->next_action(),
            "Waiting for calibration job job-1 submitted by the monitor");

  // Still running, trigger still fired: no second job for the same trades.
  launcher_.SetJob("job-1", {JobStatus::State::kRunning, false, ""});
  d = Run(*m);
  EXPECT_EQ(d.action(), clm::v1::MONITOR_ACTION_SKIPPED);
  EXPECT_EQ(d.reason(), "waiting for the calibration job submitted by the monitor");
  EXPECT_EQ(d.job_id(), "job-1");
  EXPECT_EQ(launcher_.submit_reasons().size(), 1u);

  launcher_.SetJob("job-1", {JobStatus::State::kSucceeded, true, ""});
  d = Run(*m);
  EXPECT_EQ(d.action(), clm::v1::MONITOR_ACTION_SKIPPED);
  EXPECT_EQ(d.operation(), clm::v1::MONITOR_OPERATION_APPROVE_SHADOW);
  EXPECT_EQ(d.reason(),
            "calibration job succeeded; AUTO_CALIBRATE leaves approval into shadow to an operator");
  EXPECT_TRUE(launcher_.approvals().empty());
  EXPECT_EQ(m->pending_job(), "");
  EXPECT_EQ(*state_.LoadPendingJob(), "");
  EXPECT_EQ(m->counters().actions, 1u);

  // The training reset the new-trade count: nothing is due any more.
  source_.Set(Snapshot(288, 248, 212, 0));
  EXPECT_EQ(Run(*m).action(), clm::v1::MONITOR_ACTION_NONE);
  EXPECT_EQ(launcher_.submit_reasons().size(), 1u);
}

TEST_F(MonitorTest, AutoShadowApprovesADeploymentReadyJob) {
  auto m = Make(clm::v1::AUTO_SHADOW);
  EXPECT_EQ(Run(*m).job_id(), "job-1");
  launcher_.SetJob("job-1", {JobStatus::State::kSucceeded, true, ""});
  const MonitorDecision d = Run(*m);
  EXPECT_EQ(d.action(), clm::v1::MONITOR_ACTION_ACTED);
  EXPECT_EQ(d.operation(), clm::v1::MONITOR_OPERATION_APPROVE_SHADOW);
  EXPECT_EQ(d.job_id(), "job-1");
  EXPECT_EQ(d.reason(), "approved into shadow: succeeded and deployment ready");
  EXPECT_EQ(launcher_.approvals(), std::vector<std::string>{"job-1"});
  EXPECT_EQ(m->pending_job(), "");
  EXPECT_EQ(m->counters().actions, 2u);
  // History, newest first: approve, then submit.
  const auto history = m->History(10);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].operation(), clm::v1::MONITOR_OPERATION_APPROVE_SHADOW);
  EXPECT_EQ(history[1].operation(), clm::v1::MONITOR_OPERATION_SUBMIT_CALIBRATION);
  EXPECT_GT(history[0].id(), history[1].id());
}

TEST_F(MonitorTest, AutoShadowDoesNotApproveAJobThatFailedSafetyValidation) {
  auto m = Make(clm::v1::AUTO_SHADOW);
  Run(*m);
  launcher_.SetJob("job-1", {JobStatus::State::kSucceeded, false, "risk score 0.4 above 0.2"});
  const MonitorDecision d = Run(*m);
  EXPECT_EQ(d.action(), clm::v1::MONITOR_ACTION_SKIPPED);
  EXPECT_EQ(
      d.reason(),
      "calibration job succeeded but failed safety validation (not deployment ready: risk score 0.4 above "
      "0.2); not approved into shadow");
  EXPECT_TRUE(launcher_.approvals().empty());
  EXPECT_EQ(m->pending_job(), "");
}

TEST_F(MonitorTest, AutoShadowRetriesAFailedApproval) {
  auto m = Make(clm::v1::AUTO_SHADOW);
  Run(*m);
  launcher_.SetJob("job-1", {JobStatus::State::kSucceeded, true, ""});
  launcher_.FailApprove(absl::UnavailableError("deployment busy"));
  MonitorDecision d = Run(*m);
  EXPECT_EQ(d.action(), clm::v1::MONITOR_ACTION_SKIPPED);
  EXPECT_EQ(d.reason(), "approving into shadow failed: UNAVAILABLE: deployment busy");
  EXPECT_EQ(m->pending_job(), "job-1");
  EXPECT_EQ(m->counters().evaluation_errors, 1u);
  launcher_.FailApprove(absl::OkStatus());
  d = Run(*m);
  EXPECT_EQ(d.action(), clm::v1::MONITOR_ACTION_ACTED);
  EXPECT_EQ(launcher_.approvals(), std::vector<std::string>{"job-1"});
  EXPECT_EQ(launcher_.submit_reasons().size(), 1u);
}

TEST_F(MonitorTest, FailedJobIsRecordedAndTheNextEvaluationSubmitsAgain) {
  auto m = Make(clm::v1::AUTO_CALIBRATE);
  Run(*m);
  launcher_.SetJob("job-1", {JobStatus::State::kFailed, false, "not enough labelled trades"});
  MonitorDecision d = Run(*m);
  EXPECT_EQ(d.action(), clm::v1::MONITOR_ACTION_SKIPPED);
  EXPECT_EQ(d.reason(), "calibration job failed: not enough labelled trades");
  EXPECT_EQ(launcher_.submit_reasons().size(), 1u);  // one action per evaluation
  d = Run(*m);
  EXPECT_EQ(d.action(), clm::v1::MONITOR_ACTION_ACTED);
  EXPECT_EQ(d.job_id(), "job-2");
}

TEST_F(MonitorTest, SubmitFailureIsSkippedWithTheReason) {
  launcher_.FailSubmit(absl::ResourceExhaustedError("job queue full"));
  auto m = Make(clm::v1::AUTO_CALIBRATE);
  const MonitorDecision d = Run(*m);
  EXPECT_EQ(d.action(), clm::v1::MONITOR_ACTION_SKIPPED);
  EXPECT_EQ(d.reason(), "submitting the calibration job failed: RESOURCE_EXHAUSTED: job queue full");
  EXPECT_EQ(m->pending_job(), "");
}

TEST_F(MonitorTest, AutomaticModeWaitsForTheGates) {
  source_.Set(Snapshot(300, 0, 10, 310));  // BATCH fires, but no losses at all
  auto m = Make(clm::v1::AUTO_SHADOW);
  const MonitorDecision d = Run(*m);
  EXPECT_TRUE(d.fired());
  EXPECT_EQ(d.action(), clm::v1::MONITOR_ACTION_SKIPPED);
  EXPECT_EQ(d.reason(), "not ready: gates not passed: loss_share");
  EXPECT_TRUE(launcher_.submit_reasons().empty());
}

TEST_F(MonitorTest, PendingJobSurvivesARestart) {
  {
    auto m = Make(clm::v1::AUTO_CALIBRATE);
    EXPECT_EQ(Run(*m).job_id(), "job-1");
  }
  launcher_.SetJob("job-1", {JobStatus::State::kRunning, false, ""});
  auto restarted = Make(clm::v1::AUTO_CALIBRATE);
  EXPECT_EQ(restarted->pending_job(), "job-1");
  const MonitorDecision d = Run(*restarted);
  EXPECT_EQ(d.reason(), "waiting for the calibration job submitted by the monitor");
  EXPECT_EQ(launcher_.submit_reasons().size(), 1u);
  EXPECT_EQ(d.id(), 2u);  // ids continue after the restart
}

TEST_F(MonitorTest, UnknownPendingJobIsDropped) {
  ASSERT_TRUE(state_.SavePendingJob("job-lost").ok());
  auto m = Make(clm::v1::AUTO_CALIBRATE);
  const MonitorDecision d = Run(*m);
  EXPECT_EQ(d.reason(), "job unknown to the job system; no longer following it");
  EXPECT_EQ(m->pending_job(), "");
}

TEST_F(MonitorTest, SetModeIsPersistedAndRecorded) {
  auto m = Make(clm::v1::LOGGING_ONLY);
  absl::StatusOr<clm::v1::ModeChange> change = m->SetMode(clm::v1::AUTO_CALIBRATE, "alice", "audit passed");
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->from_mode(), clm::v1::LOGGING_ONLY);
  EXPECT_EQ(change->to_mode(), clm::v1::AUTO_CALIBRATE);
  EXPECT_EQ(change->changed_by(), "alice");
  EXPECT_EQ(change->reason(), "audit passed");
  EXPECT_EQ(change->changed_at().seconds(), absl::ToUnixSeconds(clock_.Now()));
  EXPECT_EQ(m->mode(), clm::v1::AUTO_CALIBRATE);
  EXPECT_EQ(m->last_mode_change()->changed_by(), "alice");
  EXPECT_EQ(state_.LoadModeChanges(10)->size(), 1u);

  // The next evaluation acts in the new mode.
  EXPECT_EQ(Run(*m).action(), clm::v1::MONITOR_ACTION_ACTED);
}

TEST_F(MonitorTest, ModeSurvivesARestartOverTheSameStore) {
  {
    auto m = Make(clm::v1::LOGGING_ONLY);
    ASSERT_TRUE(m->SetMode(clm::v1::AUTO_SHADOW, "bob", "shadow trial").ok());
  }
  // The persisted choice wins over the policy's default_mode.
  auto restarted = Make(clm::v1::LOGGING_ONLY);
  EXPECT_EQ(restarted->mode(), clm::v1::AUTO_SHADOW);
  EXPECT_EQ(restarted->last_mode_change()->changed_by(), "bob");
  EXPECT_EQ(restarted->last_mode_change()->reason(), "shadow trial");
}

TEST_F(MonitorTest, ModeAndHistorySurviveReopeningAFileStore) {
  const std::string path = ::testing::TempDir() + "/cadence_state_test.log";
  std::remove(path.c_str());
  {
    testing::FileCadenceStateStore store(path);
    auto m = MakeWith(PolicyWithMode(clm::v1::LOGGING_ONLY), &store);
    Run(*m);  // SKIPPED: logging only
    ASSERT_TRUE(m->SetMode(clm::v1::AUTO_CALIBRATE, "carol", "calibration approved").ok());
    ASSERT_TRUE(m->SetMode(clm::v1::AUTO_SHADOW, "dave", "shadow approved").ok());
    Run(*m);  // ACTED: job-1
  }
  testing::FileCadenceStateStore reopened(path);
  auto m = MakeWith(PolicyWithMode(clm::v1::LOGGING_ONLY), &reopened);
  EXPECT_EQ(m->mode(), clm::v1::AUTO_SHADOW);
  EXPECT_EQ(m->last_mode_change()->from_mode(), clm::v1::AUTO_CALIBRATE);
  EXPECT_EQ(m->last_mode_change()->changed_by(), "dave");
  EXPECT_EQ(m->pending_job(), "job-1");
  const auto history = m->History(10);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].action(), clm::v1::MONITOR_ACTION_ACTED);
  EXPECT_EQ(history[0].job_id(), "job-1");
  EXPECT_EQ(history[1].reason(), "LOGGING_ONLY: reporting only; an operator submits the calibration job");
  std::remove(path.c_str());
}

TEST_F(MonitorTest, SetModeRejectsIncompleteRequests) {
  auto m = Make(clm::v1::LOGGING_ONLY);
  EXPECT_EQ(m->SetMode(clm::v1::LEARNING_MODE_UNSPECIFIED, "alice", "x").status().message(),
            "mode: must be LOGGING_ONLY, AUTO_CALIBRATE or AUTO_SHADOW");
  EXPECT_EQ(m->SetMode(clm::v1::AUTO_CALIBRATE, "", "x").status().message(),
            "changed_by: required, 1..128 bytes naming who makes the change, got 0 bytes");
  EXPECT_EQ(m->SetMode(clm::v1::AUTO_CALIBRATE, "alice", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m->SetMode(clm::v1::AUTO_CALIBRATE, "alice", std::string(1025, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m->mode(), clm::v1::LOGGING_ONLY);
  EXPECT_TRUE(state_.LoadModeChanges(10)->empty());
}

TEST_F(MonitorTest, AutomaticModesNeedAJobSystem) {
  auto m = Make(clm::v1::LOGGING_ONLY, /*with_launcher=*/false);
  absl::StatusOr<clm::v1::ModeChange> change = m->SetMode(clm::v1::AUTO_CALIBRATE, "alice", "go");
  EXPECT_EQ(change.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(m->SetMode(clm::v1::LOGGING_ONLY, "alice", "confirm").ok());
}

TEST_F(MonitorTest, ModeIsUnchangedWhenItCannotBePersisted) {
  testing::FailingStateStore failing(&state_);
  auto m = MakeWith(PolicyWithMode(clm::v1::LOGGING_ONLY), &failing);
  failing.FailWrites(true);
  absl::StatusOr<clm::v1::ModeChange> change = m->SetMode(clm::v1::AUTO_CALIBRATE, "alice", "go");
  EXPECT_EQ(change.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(change.status().message(), "persisting the mode change: disk full");
  EXPECT_EQ(m->mode(), clm::v1::LOGGING_ONLY);
  EXPECT_FALSE(m->last_mode_change().has_value());
}

TEST_F(MonitorTest, InvalidPolicyIsRejectedAtCreation) {
  clm::v1::CadencePolicy p;
  p.mutable_gates()->set_min_win_share(2);
  absl::StatusOr<std::unique_ptr<Monitor>> m = Monitor::Create(p, {&source_, &state_, &clock_, nullptr});
  EXPECT_EQ(m.status().message(), "gates.min_win_share: must be within [0, 1], got 2");
}

TEST_F(MonitorTest, SnapshotFailureIsAnErrorAndADecision) {
  source_.Fail(absl::UnavailableError("database locked"));
  auto m = Make(clm::v1::AUTO_CALIBRATE);
  absl::StatusOr<MonitorDecision> d = m->RunOnce();
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(m->CurrentReport().status().code(), absl::StatusCode::kUnavailable);
  ASSERT_EQ(m->History(10).size(), 1u);
  EXPECT_EQ(m->History(10)[0].reason(), "cannot read the data set: database locked");
  EXPECT_EQ(m->counters().evaluation_errors, 1u);
  EXPECT_TRUE(launcher_.submit_reasons().empty());
}

TEST_F(MonitorTest, HistoryIsBoundedNewestFirst) {
  clm::v1::CadencePolicy p = PolicyWithMode(clm::v1::LOGGING_ONLY);
  p.mutable_monitor()->set_history_limit(3);
  auto m = MakeWith(p, &state_);
  // Alternate between "nothing due" and "fired, logging only": five distinct decisions.
  for (int i = 0; i < 5; ++i) {
    source_.Set(i % 2 == 0 ? Snapshot(288, 248, 212, 5) : WorkedExample());
    Run(*m);
  }
  const auto history = m->History(100);
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].id(), 5u);
  EXPECT_EQ(history[2].id(), 3u);
  EXPECT_EQ(m->History(1).size(), 1u);
  EXPECT_EQ(state_.LoadDecisions(100)->size(), 5u);  // the store keeps what memory lets go
}

TEST_F(MonitorTest, SubscribersSeeEveryChangeAndOnlyChanges) {
  auto m = Make(clm::v1::LOGGING_ONLY);
  std::vector<clm::v1::CadenceReport> seen;
  Monitor::Subscription sub = m->Subscribe([&](const clm::v1::CadenceReport& r) { seen.push_back(r); });
  EXPECT_FALSE(sub.current.has_value());

  Run(*m);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(m->report_version(), 1u);
  Run(*m);  // same data, same time: no change
  EXPECT_EQ(seen.size(), 1u);

  source_.Set(Snapshot(289, 248, 212, 749));
  Run(*m);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].data().total_trades(), 749u);

  ASSERT_TRUE(m->SetMode(clm::v1::AUTO_CALIBRATE, "alice", "go").ok());
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2].mode(), clm::v1::AUTO_CALIBRATE);
  EXPECT_EQ(m->counters().reports_published, 3u);

  // A late subscriber gets the current report to start from.
  Monitor::Subscription late = m->Subscribe([](const clm::v1::CadenceReport&) {});
  ASSERT_TRUE(late.current.has_value());
  EXPECT_EQ(late.current->mode(), clm::v1::AUTO_CALIBRATE);
  m->Unsubscribe(late.id);

  m->Unsubscribe(sub.id);
  source_.Set(Snapshot(290, 248, 212, 750));
  Run(*m);
  EXPECT_EQ(seen.size(), 3u);
}

TEST_F(MonitorTest, EvaluateScopeUsesTheScopeAndNeverActs) {
  auto m = Make(clm::v1::AUTO_CALIBRATE);
  absl::StatusOr<clm::v1::CadenceReport> r = m->EvaluateScope({"BTCUSDT", ""});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->symbol(), "BTCUSDT");
  EXPECT_EQ(r->mode(), clm::v1::AUTO_CALIBRATE);
  ASSERT_EQ(source_.scopes().size(), 1u);
  EXPECT_EQ(source_.scopes()[0].symbol, "BTCUSDT");
  EXPECT_TRUE(launcher_.submit_reasons().empty());
  EXPECT_TRUE(m->History(10).empty());
}

TEST_F(MonitorTest, AsyncRequestsNeedTheThread) {
  auto m = Make(clm::v1::LOGGING_ONLY);
  absl::Status got;
  m->EvaluateScopeAsync({}, [&](absl::StatusOr<clm::v1::CadenceReport> r) { got = r.status(); });
  EXPECT_EQ(got.code(), absl::StatusCode::kUnavailable);
}

TEST_F(MonitorTest, ThreadEvaluatesAtStartOnNudgeAndServesRequests) {
  auto m = Make(clm::v1::LOGGING_ONLY);
  ASSERT_TRUE(m->Start().ok());
  EXPECT_EQ(m->Start().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(m->counters().evaluations, 1u);
  ASSERT_TRUE(m->CurrentReport().ok());

  absl::Notification changed;
  Monitor::Subscription sub = m->Subscribe([&](const clm::v1::CadenceReport& r) {
    if (r.data().total_trades() == 800 && !changed.HasBeenNotified()) changed.Notify();
  });
  source_.Set(Snapshot(300, 280, 220, 800));
  m->Nudge();
  m->Nudge();
  ASSERT_TRUE(changed.WaitForNotificationWithTimeout(absl::Seconds(30)));
  m->Unsubscribe(sub.id);

  absl::Notification scoped;
  std::string symbol;
  m->EvaluateScopeAsync({"ETHUSDT", ""}, [&](absl::StatusOr<clm::v1::CadenceReport> r) {
    symbol = r.ok() ? r->symbol() : r.status().ToString();
    scoped.Notify();
  });
  ASSERT_TRUE(scoped.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(symbol, "ETHUSDT");

  absl::Notification mode_set;
  absl::StatusOr<clm::v1::ModeChange> change;
  m->SetModeAsync(clm::v1::AUTO_CALIBRATE, "erin", "go", [&](absl::StatusOr<clm::v1::ModeChange> c) {
    change = std::move(c);
    mode_set.Notify();
  });
  ASSERT_TRUE(mode_set.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->changed_by(), "erin");

  // The interval is a day: returning promptly shows Stop wakes the condition variable.
  const absl::Time before = absl::Now();
  m->Stop();
  EXPECT_LT(absl::Now() - before, absl::Seconds(10));
  EXPECT_GE(m->counters().evaluations, 2u);
  absl::Status after_stop;
  m->EvaluateScopeAsync({}, [&](absl::StatusOr<clm::v1::CadenceReport> r) { after_stop = r.status(); });
  EXPECT_EQ(after_stop.code(), absl::StatusCode::kUnavailable);
}

TEST_F(MonitorTest, ABurstOfNudgesCausesOneEvaluation) {
  clm::v1::CadencePolicy p = PolicyWithMode(clm::v1::LOGGING_ONLY);
  p.mutable_monitor()->set_nudge_debounce_ms(500);
  auto m = MakeWith(p, &state_);
  ASSERT_TRUE(m->Start().ok());
  absl::Notification evaluated;
  Monitor::Subscription sub = m->Subscribe([&](const clm::v1::CadenceReport& r) {
    if (r.data().total_trades() == 900 && !evaluated.HasBeenNotified()) evaluated.Notify();
  });
  source_.Set(Snapshot(300, 300, 300, 900));
  for (int i = 0; i < 100; ++i) m->Nudge();
  ASSERT_TRUE(evaluated.WaitForNotificationWithTimeout(absl::Seconds(30)));
  m->Unsubscribe(sub.id);
  m->Stop();
  EXPECT_EQ(m->counters().evaluations, 2u);  // Start's, and one for the whole burst
}


// Read your writes: after Nudge returns (the ingest ack follows it), every reader sees the change, long
// before the debounced decision.
class ReadYourWritesTest : public MonitorTest {
 protected:
  // The longest debounce the policy allows: a reader that waited for it would time out below.
  std::unique_ptr<Monitor> MakeDebounced(clm::v1::LearningMode mode) {
    clm::v1::CadencePolicy p = PolicyWithMode(mode);
    p.mutable_monitor()->set_nudge_debounce_ms(60000);
    return MakeWith(p, &state_);
  }

  static absl::StatusOr<clm::v1::CadenceReport> FreshAsync(Monitor& m) {
    absl::Notification done;
    absl::StatusOr<clm::v1::CadenceReport> out = absl::DeadlineExceededError("no answer within 10 s");
    m.FreshReportAsync([&](absl::StatusOr<clm::v1::CadenceReport> r) {
      out = std::move(r);
      done.Notify();
    });
    if (!done.WaitForNotificationWithTimeout(absl::Seconds(10))) return absl::DeadlineExceededError("no answer");
    return out;
  }
};

TEST_F(ReadYourWritesTest, EveryReaderSeesEachNotedChangeAtOnceAndOnlyTheDecisionWaits) {
  auto m = MakeDebounced(clm::v1::LOGGING_ONLY);
  ASSERT_TRUE(m->Start().ok());
  ASSERT_EQ(m->counters().evaluations, 1u);
  std::vector<uint64_t> watched;
  absl::Mutex watched_mu;
  Monitor::Subscription early = m->Subscribe([&](const clm::v1::CadenceReport& r) {
    absl::MutexLock lock(&watched_mu);
    watched.push_back(r.data().total_trades());
  });
  ASSERT_TRUE(early.current.has_value());
  for (uint64_t i = 1; i <= 30; ++i) {
    // A commit of one more trade, then its ack: what every call that starts now must see.
    source_.Set(Snapshot(288 + i, 248, 212, 748 + i));
    m->Nudge();
    absl::StatusOr<clm::v1::CadenceReport> r = FreshAsync(*m);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->data().total_trades(), 748 + i) << "GetStatus lagged the ack at trade " << i;
    // Published: CurrentReport and the subscribers have it too.
    EXPECT_EQ(m->CurrentReport()->data().total_trades(), 748 + i);
    // Already covered now: answered at once, without another evaluation.
    const uint64_t refreshes = m->counters().refreshes;
    ASSERT_EQ(FreshAsync(*m)->data().total_trades(), 748 + i);
    EXPECT_EQ(m->counters().refreshes, refreshes);

    source_.Set(Snapshot(288 + i, 248, 212, 748 + i));  // unchanged data, but a change noted
    m->Nudge();
    // A watch that starts now gets a report covering it first, even though nothing changed.
    absl::Notification first;
    uint64_t first_total = 0;
    Monitor::Subscription late = m->Subscribe([&](const clm::v1::CadenceReport& report) {
      if (first.HasBeenNotified()) return;
      first_total = report.data().total_trades();
      first.Notify();
    });
    if (late.current.has_value()) {
      first_total = late.current->data().total_trades();
    } else {
      ASSERT_TRUE(first.WaitForNotificationWithTimeout(absl::Seconds(10))) << "no first report for a watch";
    }
    m->Unsubscribe(late.id);
    EXPECT_EQ(first_total, 748 + i);
  }
  m->Unsubscribe(early.id);
  {
    absl::MutexLock lock(&watched_mu);
    ASSERT_EQ(watched.size(), 30u);  // each change once, the unchanged re-reads not at all
    EXPECT_EQ(watched.back(), 778u);
  }
  // The decision and its log line still wait for the burst to settle.
  EXPECT_EQ(m->counters().evaluations, 1u);
  EXPECT_EQ(m->History(10).size(), 1u);
  EXPECT_GE(m->counters().refreshes, 30u);
  m->Stop();
}

TEST_F(ReadYourWritesTest, FreshReportEvaluatesOnTheCallerWhenThePublishedOneIsOlder) {
  auto m = Make(clm::v1::LOGGING_ONLY);
  Run(*m);
  EXPECT_EQ(m->FreshReport()->data().total_trades(), 748u);
  EXPECT_EQ(source_.scopes().size(), 1u);  // covered: the published report, no load

  source_.Set(Snapshot(300, 260, 212, 772));
  m->Nudge();
  absl::StatusOr<clm::v1::CadenceReport> fresh = m->FreshReport();
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(fresh->data().total_trades(), 772u);
  EXPECT_EQ(m->CurrentReport()->data().total_trades(), 748u);  // not published, nothing decided
  EXPECT_EQ(m->counters().evaluations, 1u);

  // Without the thread the asynchronous form answers only what is already covered.
  absl::Status async;
  m->FreshReportAsync([&](absl::StatusOr<clm::v1::CadenceReport> r) { async = r.status(); });
  EXPECT_EQ(async.code(), absl::StatusCode::kUnavailable);
  Run(*m);
  absl::StatusOr<clm::v1::CadenceReport> covered = absl::UnknownError("not called");
  m->FreshReportAsync([&](absl::StatusOr<clm::v1::CadenceReport> r) { covered = std::move(r); });
  ASSERT_TRUE(covered.ok()) << covered.status();
  EXPECT_EQ(covered->data().total_trades(), 772u);
}

TEST_F(ReadYourWritesTest, ALoadFailureAnswersTheWaitingReaderWithTheError) {
  auto m = MakeDebounced(clm::v1::LOGGING_ONLY);
  ASSERT_TRUE(m->Start().ok());
  source_.Fail(absl::UnavailableError("database locked"));
  m->Nudge();
  absl::StatusOr<clm::v1::CadenceReport> r = FreshAsync(*m);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "database locked");
  source_.Fail(absl::OkStatus());
  r = FreshAsync(*m);
  ASSERT_TRUE(r.ok()) << r.status();
  m->Stop();
}

// The automatic approval's level check runs on the monitor thread, in the middle of an evaluation: the
// fresh read there must not wait for the thread it runs on.
class LevelCheckingLauncher final : public JobLauncher {
 public:
  explicit LevelCheckingLauncher(FakeLauncher* inner) : inner_(inner) {}
  void SetMonitor(Monitor* monitor) { monitor_ = monitor; }
  absl::StatusOr<std::string> SubmitCalibration(const std::string& reason) override {
    return inner_->SubmitCalibration(reason);
  }
  absl::StatusOr<JobStatus> GetJobStatus(const std::string& job_id) override { return inner_->GetJobStatus(job_id); }
  absl::Status ApproveIntoShadow(const std::string& job_id, const std::string& reason) override {
    absl::StatusOr<clm::v1::CadenceReport> levels = monitor_->FreshReport();
    if (!levels.ok()) return levels.status();
    seen_total_ = levels->data().total_trades();
    return inner_->ApproveIntoShadow(job_id, reason);
  }
  uint64_t seen_total() const { return seen_total_; }

 private:
  FakeLauncher* const inner_;
  Monitor* monitor_ = nullptr;
  std::atomic<uint64_t> seen_total_{0};
};

TEST_F(ReadYourWritesTest, TheAutomaticApprovalSeesTheTradesAcknowledgedBeforeIt) {
  LevelCheckingLauncher launcher(&launcher_);
  clm::v1::CadencePolicy p = PolicyWithMode(clm::v1::AUTO_SHADOW);
  absl::StatusOr<std::unique_ptr<Monitor>> created = Monitor::Create(p, {&source_, &state_, &clock_, &launcher});
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<Monitor> m = *std::move(created);
  launcher.SetMonitor(m.get());
  ASSERT_TRUE(m->Start().ok());  // submits job-1
  ASSERT_EQ(m->pending_job(), "job-1");
  launcher_.SetJob("job-1", {JobStatus::State::kSucceeded, true, ""});
  source_.Set(Snapshot(300, 260, 212, 24));
  m->Nudge();  // the job's end: the thread approves, checking the levels on itself
  for (int i = 0; i < 1000 && launcher_.approvals().empty(); ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(launcher_.approvals(), std::vector<std::string>{"job-1"});
  EXPECT_EQ(launcher.seen_total(), 772u);
  m->Stop();
}

}  // namespace
}  // namespace clm::cadence
