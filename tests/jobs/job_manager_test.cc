// The job system over the real SQLite job store, with a trade source the test controls.
#include "lib/jobs/job_manager.h"

#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "lib/jobs/cadence_launcher.h"
#include "lib/store/sqlite.h"
#include "lib/store/sqlite_job_store.h"
#include "lib/store/sqlite_trade_store.h"
#include "tests/testing/test_util.h"

namespace clm::jobs {
namespace {

using clm::v1::Job;

// An engine that says 0.50-0.70 but wins 38% there, and is accurate above 0.75.
std::vector<Trade> OverConfidentTrades(int n, uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<Trade> trades;
  for (int i = 0; i < n; ++i) {
    Trade t;
    t.seq = i + 1;
    t.trade_id = absl::StrCat("t", i);
    t.symbol = i % 3 == 0 ? "ETHUSDT" : "BTCUSDT";
    t.model_id = "ensemble";
    t.confidence = 0.45 + 0.5 * u(rng);
    double p = t.confidence < 0.70 ? 0.38 : t.confidence;
    t.outcome = u(rng) < p ? Outcome::kWin : Outcome::kLoss;
    t.closed_at_us = 1'760'000'000'000'000 + static_cast<int64_t>(i) * 60'000'000;
    trades.push_back(std::move(t));
  }
  return trades;
}

// Serves fixed trades; LoadTrades can be held until the test releases it.
class FakeTrades final : public store::TradeStore {
 public:
  explicit FakeTrades(std::vector<Trade> trades) : trades_(std::move(trades)) {}
  void Hold() {
    absl::MutexLock lock(&mu_);
    held_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    held_ = false;
  }
  absl::Notification& loading() { return loading_; }

  absl::StatusOr<std::vector<store::BatchResult>> WriteBatches(absl::Span<store::PendingBatch* const>,
                                                               int64_t) override {
    return absl::UnimplementedError("read-only fake");
  }
  absl::StatusOr<clm::v1::DatasetSummary> Summarize(const store::DatasetQuery&) override {
    return absl::UnimplementedError("read-only fake");
  }
  absl::StatusOr<std::vector<Trade>> LoadTrades(const store::DatasetQuery& query) override {
    if (!loading_.HasBeenNotified()) loading_.Notify();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](bool* held) { return !*held; }, &held_));
    std::vector<Trade> out;
    for (const Trade& t : trades_) {
      if (query.symbol.empty() || query.symbol == t.symbol) out.push_back(t);
    }
    return out;
  }
  absl::StatusOr<int64_t> MaxSeq() override { return static_cast<int64_t>(trades_.size()); }
  absl::StatusOr<clm::v1::ListDeadLettersResponse> ListDeadLetters(uint32_t, uint64_t) override {
    return absl::UnimplementedError("read-only fake");
  }
  int64_t SizeBytes() const override { return 0; }

 private:
  std::vector<Trade> trades_;
  absl::Mutex mu_;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  absl::Notification loading_;
};

class RecordingObserver final : public JobObserver {
 public:
  void OnJobEnded(const Job& job, absl::Duration) override {
    absl::MutexLock lock(&mu_);
    ended_.push_back(job.state());
  }
  void OnQueueChanged(size_t, size_t) override {}
  std::vector<clm::v1::JobState> ended() {
    absl::MutexLock lock(&mu_);
    return ended_;
  }

 private:
  absl::Mutex mu_;
  std::vector<clm::v1::JobState> ended_;
};

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path() + "/clm.db";
    auto store = store::SqliteJobStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void StartManager(JobManager::Options options = {}) {
    manager_ = std::make_unique<JobManager>(&trades_, store_.get(), &observer_, options);
    ASSERT_TRUE(manager_->Start().ok());
  }

  // Blocks until the job ends, following it the way the Watch RPC does.
  Job WaitForEnd(const std::string& id) {
    absl::Notification ended;
    Job last;
    absl::Mutex mu;
    auto subscription = manager_->Subscribe(id, [&](const Job& job) {
      absl::MutexLock lock(&mu);
      last = job;
      if (job.state() >= clm::v1::SUCCEEDED && !ended.HasBeenNotified()) ended.Notify();
    });
    if (subscription.active) ended.WaitForNotificationWithTimeout(absl::Seconds(60));
    manager_->Unsubscribe(subscription.id);
    auto job = manager_->Get(id, true);
    EXPECT_TRUE(job.ok()) << job.status();
    return *job;
  }

  int64_t TrainingsMaxSeq() {
    auto db = store::Database::Open(path_, {});
    auto stmt = (*db)->Prepare("SELECT COUNT(*), COALESCE(MAX(max_seq), -1) FROM trainings");
    EXPECT_TRUE(stmt->Step().ok());
    return stmt->ColumnInt(0) == 0 ? -1 : stmt->ColumnInt(1);
  }

  clm::testing::TempDir dir_;
  std::string path_;
  FakeTrades trades_{OverConfidentTrades(600)};
  RecordingObserver observer_;
  std::unique_ptr<store::SqliteJobStore> store_;
  std::unique_ptr<JobManager> manager_;
};

TEST_F(JobManagerTest, SubmittedJobRunsToSuccessAndRecordsATraining) {
  StartManager();
  clm::v1::SubmitJobRequest request;
  request.set_submitted_by("alice");
  request.set_reason("weekly recalibration");
  absl::StatusOr<Job> job = manager_->Submit(request);
  ASSERT_TRUE(job.ok()) << job.status();
  // cal_YYYYMMDD_HHMMSS, the date and time of submission in UTC.
  ASSERT_EQ(job->id().size(), 19u) << job->id();
  EXPECT_EQ(job->id().substr(0, 4), "cal_");
  EXPECT_EQ(job->id()[12], '_');
  EXPECT_TRUE(absl::c_all_of(job->id().substr(4, 8) + job->id().substr(13), absl::ascii_isdigit)) << job->id();
  EXPECT_EQ(job->state(), clm::v1::QUEUED);

  Job done = WaitForEnd(job->id());
  ASSERT_EQ(done.state(), clm::v1::SUCCEEDED) << done.error();
  EXPECT_DOUBLE_EQ(done.progress(), 1.0);
  EXPECT_EQ(done.trades_seen(), 600u);
  EXPECT_EQ(done.max_seq(), 600u);
  EXPECT_EQ(done.request().submitted_by(), "alice");
  EXPECT_TRUE(done.result().has_global_map());
  EXPECT_LT(done.result().evaluation().in_sample_after().mse(), done.result().evaluation().in_sample_before().mse());
  EXPECT_EQ(TrainingsMaxSeq(), 600);
  EXPECT_EQ(observer_.ended(), std::vector<clm::v1::JobState>{clm::v1::SUCCEEDED});

  // Persisted with its result: a new manager over the same store still has it.
  manager_.reset();
  StartManager();
  auto again = manager_->Get(job->id(), true);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state(), clm::v1::SUCCEEDED);
  EXPECT_TRUE(again->result().has_global_map());
}

TEST_F(JobManagerTest, IdsAreUniqueWithinOneSecond) {
  trades_.Hold();
  StartManager();
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto job = manager_->Submit({});
    ASSERT_TRUE(job.ok()) << job.status();
    ids.insert(job->id());
  }
  EXPECT_EQ(ids.size(), 5u);
  trades_.Release();
}

TEST_F(JobManagerTest, InvalidRequestsNameTheField) {
  StartManager();
  clm::v1::SubmitJobRequest request;
  request.mutable_options()->set_folds(1);
  auto job = manager_->Submit(request);
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  // The path from the request's root, once: "options.folds", not "options.options.folds".
  EXPECT_EQ(job.status().message(), "options.folds: must be within [2, 100], got 1");

  request.Clear();
  request.mutable_filter()->mutable_closed_from()->set_seconds(2000);
  request.mutable_filter()->mutable_closed_to()->set_seconds(1000);
  job = manager_->Submit(request);
  EXPECT_EQ(job.status().message(), "filter.closed_to: must be after filter.closed_from");

  request.Clear();
  (*request.mutable_current_weights())["xgboost"] = -1;
  job = manager_->Submit(request);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(job.status().message().find("current_weights[xgboost]"), std::string::npos);

  auto listed = manager_->List({});
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->jobs_size(), 0) << "a refused request must not leave a job behind";
}

TEST_F(JobManagerTest, CancelQueuedAndRunningJobs) {
  trades_.Hold();
  StartManager();
  auto running = manager_->Submit({});
  auto queued = manager_->Submit({});
  ASSERT_TRUE(running.ok() && queued.ok());
  trades_.loading().WaitForNotification();  // the first job is RUNNING, inside LoadTrades

  auto cancelled = manager_->Cancel(queued->id(), "not needed");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), clm::v1::CANCELLED);
  EXPECT_EQ(cancelled->error(), "cancelled: not needed");

  auto asked = manager_->Cancel(running->id(), "");
  ASSERT_TRUE(asked.ok()) << asked.status();
  EXPECT_EQ(asked->state(), clm::v1::RUNNING);  // it notices at its next progress report
  trades_.Release();
  Job done = WaitForEnd(running->id());
  EXPECT_EQ(done.state(), clm::v1::CANCELLED);
  EXPECT_EQ(done.error(), "cancelled by request");
  EXPECT_FALSE(done.has_result());
  EXPECT_EQ(TrainingsMaxSeq(), -1) << "a cancelled job is not a training";

  auto late = manager_->Cancel(running->id(), "");
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(manager_->Cancel("cal_19990101_000000", "").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobManagerTest, QueueLimitIsEnforced) {
  trades_.Hold();
  JobManager::Options options;
  options.max_queued = 1;
  StartManager(options);
  ASSERT_TRUE(manager_->Submit({}).ok());  // taken by the worker
  trades_.loading().WaitForNotification();
  ASSERT_TRUE(manager_->Submit({}).ok());  // waits
  auto refused = manager_->Submit({});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  trades_.Release();
}

TEST_F(JobManagerTest, RestartFailsTheRunningJobAndRunsTheQueuedOne) {
  Job was_running;
  was_running.set_id("cal_20260101_000000");
  was_running.set_state(clm::v1::RUNNING);
  was_running.mutable_created_at()->set_seconds(1767225600);
  Job was_queued;
  was_queued.set_id("cal_20260101_000001");
  was_queued.set_state(clm::v1::QUEUED);
  was_queued.mutable_created_at()->set_seconds(1767225601);
  ASSERT_TRUE(store_->Put(was_running).ok());
  ASSERT_TRUE(store_->Put(was_queued).ok());

  StartManager();
  auto failed = manager_->Get(was_running.id(), false);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->state(), clm::v1::FAILED);
  EXPECT_NE(failed->error().find("the server stopped while this job was running"), std::string::npos);
  EXPECT_EQ(WaitForEnd(was_queued.id()).state(), clm::v1::SUCCEEDED);
}

TEST_F(JobManagerTest, ListIsNewestFirstPagedAndFiltered) {
  StartManager();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto job = manager_->Submit({});
    ASSERT_TRUE(job.ok());
    ids.push_back(job->id());
    WaitForEnd(job->id());
  }
  ASSERT_TRUE(manager_->Cancel(ids[0], "").status().code() == absl::StatusCode::kFailedPrecondition);
  clm::v1::ListJobsRequest request;
  request.set_page_size(2);
  std::vector<std::string> seen;
  while (true) {
    auto page = manager_->List(request);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const Job& job : page->jobs()) {
      seen.push_back(job.id());
      EXPECT_FALSE(job.has_result());
    }
    if (page->next_page_token().empty()) break;
    request.set_page_token(page->next_page_token());
  }
  EXPECT_EQ(seen, std::vector<std::string>(ids.rbegin(), ids.rend()));

  clm::v1::ListJobsRequest failed_only;
  failed_only.set_state(clm::v1::FAILED);
  EXPECT_EQ(manager_->List(failed_only)->jobs_size(), 0);
  clm::v1::ListJobsRequest too_big;
  too_big.set_page_size(201);
  EXPECT_EQ(manager_->List(too_big).status().message(), "page_size: must be at most 200, got 201");
}

TEST_F(JobManagerTest, CadenceLauncherSubmitsAndReportsReadiness) {
  StartManager();
  CadenceLauncher launcher(manager_.get());
  auto id = launcher.SubmitCalibration("BATCH trigger fired: 600 new trades");
  ASSERT_TRUE(id.ok()) << id.status();
  Job done = WaitForEnd(*id);
  EXPECT_EQ(done.request().submitted_by(), "cadence-monitor");
  auto status = launcher.GetJobStatus(*id);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->state, cadence::JobStatus::State::kSucceeded);
  EXPECT_EQ(status->deployment_ready, done.result().safety().deployment_ready());
  EXPECT_EQ(launcher.GetJobStatus("cal_19990101_000000").status().code(), absl::StatusCode::kNotFound);
}

// A job with nothing to learn from ends FAILED and says why; it records no training, so the cadence
// triggers keep counting every trade.
TEST_F(JobManagerTest, AJobWhoseFilterMatchesNoTradesFailsAndSaysWhy) {
  StartManager();
  CadenceLauncher launcher(manager_.get());
  clm::v1::SubmitJobRequest request;
  request.mutable_filter()->set_symbol("DOGEUSDT");
  absl::StatusOr<Job> job = manager_->Submit(request);
  ASSERT_TRUE(job.ok()) << job.status();
  Job done = WaitForEnd(job->id());
  EXPECT_EQ(done.state(), clm::v1::FAILED);
  EXPECT_EQ(done.error(), "no trades to calibrate on: none match the filter (symbol \"DOGEUSDT\")");
  EXPECT_FALSE(done.has_result());
  EXPECT_EQ(done.trades_seen(), 0u);
  EXPECT_EQ(TrainingsMaxSeq(), -1);
  EXPECT_EQ(observer_.ended(), std::vector<clm::v1::JobState>{clm::v1::FAILED});
  absl::StatusOr<cadence::JobStatus> status = launcher.GetJobStatus(done.id());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->state, cadence::JobStatus::State::kFailed);
  EXPECT_EQ(status->message, "FAILED: no trades to calibrate on: none match the filter (symbol \"DOGEUSDT\")");

  // The same filter with trades to match still runs.
  request.mutable_filter()->set_symbol("ETHUSDT");
  job = manager_->Submit(request);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(WaitForEnd(job->id()).state(), clm::v1::SUCCEEDED);
}

TEST_F(JobManagerTest, AJobOnAnEmptyStoreFailsAndNamesEveryFilterTerm) {
  FakeTrades none({});
  manager_ = std::make_unique<JobManager>(&none, store_.get(), &observer_, JobManager::Options());
  ASSERT_TRUE(manager_->Start().ok());
  absl::StatusOr<Job> job = manager_->Submit({});
  ASSERT_TRUE(job.ok()) << job.status();
  Job done = WaitForEnd(job->id());
  EXPECT_EQ(done.state(), clm::v1::FAILED);
  EXPECT_EQ(done.error(), "no trades to calibrate on: none are stored yet");

  clm::v1::SubmitJobRequest request;
  request.mutable_filter()->set_model_id("ensemble");
  request.mutable_filter()->mutable_closed_from()->set_seconds(1'760'000'000);
  request.mutable_filter()->mutable_closed_to()->set_seconds(1'760'086'400);
  job = manager_->Submit(request);
  ASSERT_TRUE(job.ok()) << job.status();
  done = WaitForEnd(job->id());
  EXPECT_EQ(done.state(), clm::v1::FAILED);
  EXPECT_EQ(done.error(),
            "no trades to calibrate on: none match the filter (model_id \"ensemble\", closed_from "
            "2025-10-09T08:53:20Z, closed_to 2025-10-10T08:53:20Z)");
  manager_->Stop();
  manager_.reset();
}

}  // namespace
}  // namespace clm::jobs
