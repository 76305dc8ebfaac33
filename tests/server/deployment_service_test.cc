// Deployment over real gRPC: the real Server with trades, a calibration job and the cadence monitor.
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clm/v1/cadence.grpc.pb.h"
#include "clm/v1/calibration_job.grpc.pb.h"
#include "clm/v1/deployment.grpc.pb.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lib/config/config.h"
#include "server/server.h"
#include "tests/testing/test_util.h"

namespace clm::server {
namespace {

using clm::v1::ActiveCalibration;
using clm::v1::TradeOutcome;

class DeploymentServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  void Restart() {
    deployment_.reset();
    cadence_.reset();
    jobs_.reset();
    ingest_.reset();
    server_.reset();
    Start();
  }

  void Start() {
    clm::v1::ServerConfig given;
    given.mutable_policy()->mutable_monitor()->set_nudge_debounce_ms(debounce_ms_);
    given.mutable_deployment()->set_active_json_path(dir_.path() + "/active.json");
    Server::Options options;
    options.grpc_address = "127.0.0.1:0";
    options.metrics_address = "";
    options.data_dir = dir_.path();
    options.config = *config::ResolveServerConfig(given);
    auto server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                       grpc::InsecureChannelCredentials());
    ingest_ = clm::v1::TradeIngest::NewStub(channel);
    jobs_ = clm::v1::CalibrationJob::NewStub(channel);
    cadence_ = clm::v1::CadenceStatus::NewStub(channel);
    deployment_ = clm::v1::Deployment::NewStub(channel);
  }

  // 1,000 trades over about a week from an engine over-confident in 0.50-0.70, then waits until the
  // monitor's report counts them (the approval rules read it).
  void IngestAndWaitForReport() {
    Ingest();
    for (int attempt = 0; attempt < 200; ++attempt) {
      grpc::ClientContext context;
      clm::v1::CadenceReport report;
      ASSERT_TRUE(cadence_->GetStatus(&context, clm::v1::GetStatusRequest(), &report).ok());
      if (report.data().total_trades() == 1000) return;
      absl::SleepFor(absl::Milliseconds(20));
    }
    FAIL() << "the cadence report never counted the trades";
  }

  void Ingest() {
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    // One batch: one commit, so the BATCH trigger fires once (in AUTO modes, one job).
    clm::v1::RecordRequest request;
    for (int i = 0; i < 1000; ++i) {
      double c = 0.45 + 0.5 * u(rng);
      double p = c < 0.70 ? 0.38 : c;
      *request.add_trades() = clm::testing::MakeTrade(absl::StrCat("d", i), c,
                                                      u(rng) < p ? TradeOutcome::WIN : TradeOutcome::LOSS,
                                                      absl::Hours(1) + absl::Minutes(10 * i));
    }
    grpc::ClientContext context;
    clm::v1::IngestAck ack;
    ASSERT_TRUE(ingest_->Record(&context, request, &ack).ok());
    ASSERT_EQ(ack.accepted(), 1000u);
  }

  std::string RunJob() {
    grpc::ClientContext context;
    clm::v1::Job job;
    EXPECT_TRUE(jobs_->Submit(&context, clm::v1::SubmitJobRequest(), &job).ok());
    grpc::ClientContext watch_context;
    clm::v1::WatchJobRequest watch;
    watch.set_id(job.id());
    auto reader = jobs_->Watch(&watch_context, watch);
    clm::v1::Job update;
    while (reader->Read(&update)) {
    }
    EXPECT_TRUE(reader->Finish().ok());
    EXPECT_EQ(update.state(), clm::v1::SUCCEEDED);
    return job.id();
  }

  int64_t debounce_ms_ = 0;  // reports follow ingest at once
  clm::testing::TempDir dir_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<clm::v1::TradeIngest::Stub> ingest_;
  std::unique_ptr<clm::v1::CalibrationJob::Stub> jobs_;
  std::unique_ptr<clm::v1::CadenceStatus::Stub> cadence_;
  std::unique_ptr<clm::v1::Deployment::Stub> deployment_;
};

// Reads a WatchActive stream on its own thread, timestamping each message.
class Watcher {
 public:
  explicit Watcher(clm::v1::Deployment::Stub* stub) {
    reader_ = stub->WatchActive(&context_, clm::v1::WatchActiveRequest());
    thread_ = std::thread([this] {
      ActiveCalibration active;
      while (reader_->Read(&active)) {
        absl::MutexLock lock(&mu_);
        seen_.push_back({absl::Now(), active});
      }
    });
  }
  ~Watcher() {
    context_.TryCancel();
    thread_.join();
    reader_->Finish();
  }
  // Waits for the message with `sequence`; returns when it arrived.
  absl::Time WaitFor(uint64_t sequence) {
    absl::MutexLock lock(&mu_);
    wanted_ = sequence;
    mu_.AwaitWithTimeout(absl::Condition(this, &Watcher::HasWanted), absl::Seconds(10));
    for (const auto& [at, active] : seen_) {
      if (active.sequence() == sequence) return at;
    }
    return absl::InfiniteFuture();
  }
  std::vector<ActiveCalibration> Seen() {
    absl::MutexLock lock(&mu_);
    std::vector<ActiveCalibration> out;
    for (const auto& [at, active] : seen_) out.push_back(active);
    return out;
  }

 private:
  bool HasWanted() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& [at, active] : seen_) {
      if (active.sequence() == wanted_) return true;
    }
    return false;
  }

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<ActiveCalibration>> reader_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::vector<std::pair<absl::Time, ActiveCalibration>> seen_ ABSL_GUARDED_BY(mu_);
  uint64_t wanted_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST_F(DeploymentServiceTest, ApprovePromoteRollbackReachEveryWatcherInOrder) {
  IngestAndWaitForReport();
  const std::string job = RunJob();
  Watcher first(deployment_.get());
  Watcher second(deployment_.get());
  ASSERT_NE(first.WaitFor(0), absl::InfiniteFuture());

  grpc::ClientContext approve_context;
  clm::v1::ApproveRequest approve;
  approve.set_job_id(job);
  approve.set_stage(clm::v1::STAGE_SHADOW);
  approve.set_approver("alice");
  approve.set_reason("reviewed the report");
  clm::v1::DeploymentVersion version;
  grpc::Status status = deployment_->Approve(&approve_context, approve, &version);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(version.version(), 1u);

  // Shadow evidence first: 120 live trades of the same over-confident engine (0.60, winning 3 in 8).
  clm::v1::RecordRequest live;
  for (int i = 0; i < 120; ++i) {
    *live.add_trades() = clm::testing::MakeTrade(absl::StrCat("live-", i), 0.6,
                                                 i % 8 < 3 ? TradeOutcome::WIN : TradeOutcome::LOSS);
  }
  grpc::ClientContext record_context;
  clm::v1::IngestAck ack;
  ASSERT_TRUE(ingest_->Record(&record_context, live, &ack).ok());
  ASSERT_EQ(ack.accepted(), 120u);

  grpc::ClientContext promote_context;
  clm::v1::PromoteRequest promote;
  promote.set_version(1);
  promote.set_approver("alice");
  promote.set_reason("shadow looked right");
  status = deployment_->Promote(&promote_context, promote, &version);
  ASSERT_TRUE(status.ok()) << status.error_message();

  grpc::ClientContext calibrate_context;
  clm::v1::CalibrateRequest calibrate;
  calibrate.add_confidences(0.60);
  clm::v1::CalibrateResponse calibrated;
  ASSERT_TRUE(deployment_->Calibrate(&calibrate_context, calibrate, &calibrated).ok());
  EXPECT_EQ(calibrated.version(), 1u);
  EXPECT_LT(calibrated.calibrated(0), 0.55) << "the over-confident 0.60 is calibrated down";

  // Rollback to identity, timed from the request to the watcher having it.
  ASSERT_NE(first.WaitFor(2), absl::InfiniteFuture());
  const absl::Time requested = absl::Now();
  grpc::ClientContext rollback_context;
  clm::v1::RollbackRequest rollback;
  rollback.set_approver("bob");
  rollback.set_reason("live win rate dropped");
  rollback.set_to_identity(true);
  ActiveCalibration active;
  ASSERT_TRUE(deployment_->Rollback(&rollback_context, rollback, &active).ok());
  const absl::Time delivered = first.WaitFor(3);
  ASSERT_NE(delivered, absl::InfiniteFuture());
  const absl::Duration latency = delivered - requested;
  std::cout << "rollback_to_watcher_ms=" << absl::ToDoubleMilliseconds(latency) << "\n";
  EXPECT_LT(latency, absl::Seconds(1));

  ASSERT_NE(second.WaitFor(3), absl::InfiniteFuture());
  for (Watcher* watcher : {&first, &second}) {
    std::vector<ActiveCalibration> seen = watcher->Seen();
    ASSERT_EQ(seen.size(), 4u);
    for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i].sequence(), i);
    EXPECT_EQ(seen[1].shadow_version(), 1u);
    EXPECT_EQ(seen[2].production_version(), 1u);
    EXPECT_EQ(seen[3].production_version(), 0u);
  }

  grpc::ClientContext audit_context;
  clm::v1::GetAuditResponse audit;
  ASSERT_TRUE(deployment_->GetAudit(&audit_context, clm::v1::GetAuditRequest(), &audit).ok());
  ASSERT_EQ(audit.entries_size(), 3);
  EXPECT_EQ(audit.entries(0).action(), clm::v1::AuditEntry::ROLLBACK);
  EXPECT_EQ(audit.entries(0).actor(), "bob");
  EXPECT_EQ(audit.entries(0).from_version(), 1u);
  EXPECT_EQ(audit.entries(0).to_version(), 0u);
}

// The level check of Approve sees the trades acknowledged before it, though the monitor's own evaluation
// waits a minute: before, it read the last evaluation's report and refused "too few trades: 0 of 100".
TEST_F(DeploymentServiceTest, ApproveRightAfterTheAckSeesTheTrades) {
  debounce_ms_ = 60000;
  Restart();
  Ingest();
  const std::string job = RunJob();
  grpc::ClientContext approve_context;
  clm::v1::ApproveRequest approve;
  approve.set_job_id(job);
  approve.set_stage(clm::v1::STAGE_SHADOW);
  approve.set_approver("alice");
  approve.set_reason("reviewed the report");
  clm::v1::DeploymentVersion version;
  grpc::Status status = deployment_->Approve(&approve_context, approve, &version);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(version.stage(), clm::v1::STAGE_SHADOW);

  // The monitor has not decided since the start: the approval did not wait for it.
  grpc::ClientContext history_context;
  clm::v1::GetMonitorHistoryResponse history;
  ASSERT_TRUE(cadence_->GetMonitorHistory(&history_context, clm::v1::GetMonitorHistoryRequest(), &history).ok());
  ASSERT_EQ(history.decisions_size(), 1);
  EXPECT_EQ(history.decisions(0).new_trades_since_training(), 0u);
}

TEST_F(DeploymentServiceTest, RefusalsNameTheRule) {
  grpc::ClientContext context;
  clm::v1::ApproveRequest approve;
  approve.set_job_id("cal_19990101_000000");
  approve.set_stage(clm::v1::STAGE_PRODUCTION);
  approve.set_approver("alice");
  approve.set_reason("why not");
  clm::v1::DeploymentVersion version;
  grpc::Status status = deployment_->Approve(&context, approve, &version);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext rollback_context;
  clm::v1::RollbackRequest rollback;
  rollback.set_approver("bob");
  rollback.set_reason("panic");
  ActiveCalibration active;
  status = deployment_->Rollback(&rollback_context, rollback, &active);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(status.error_message(), "rule rollback_target: no calibration is in production: nothing to roll back");

  grpc::ClientContext calibrate_context;
  clm::v1::CalibrateRequest calibrate;
  calibrate.add_confidences(1.5);
  clm::v1::CalibrateResponse calibrated;
  status = deployment_->Calibrate(&calibrate_context, calibrate, &calibrated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "confidences[0]: must be within [0, 1], got 1.5");
}

// AUTO_SHADOW: the fired trigger submits a job and, once it passed safety validation, the monitor approves
// it into shadow by itself. Production stays untouched.
TEST_F(DeploymentServiceTest, AutoShadowApprovesASafeJobIntoShadow) {
  grpc::ClientContext mode_context;
  clm::v1::SetModeRequest mode;
  mode.set_mode(clm::v1::AUTO_SHADOW);
  mode.set_changed_by("alice");
  mode.set_reason("trust the safety validation for shadow");
  clm::v1::SetModeResponse mode_response;
  ASSERT_TRUE(cadence_->SetMode(&mode_context, mode, &mode_response).ok());
  Watcher watcher(deployment_.get());
  IngestAndWaitForReport();
  ASSERT_NE(watcher.WaitFor(1), absl::InfiniteFuture()) << "the monitor did not approve into shadow";
  std::vector<ActiveCalibration> seen = watcher.Seen();
  EXPECT_EQ(seen.back().shadow_version(), 1u);
  EXPECT_EQ(seen.back().production_version(), 0u);

  grpc::ClientContext list_context;
  clm::v1::ListDeploymentsResponse list;
  ASSERT_TRUE(deployment_->List(&list_context, clm::v1::ListDeploymentsRequest(), &list).ok());
  ASSERT_EQ(list.versions_size(), 1);
  EXPECT_EQ(list.versions(0).approved_by(), "cadence-monitor");
}

// Live KPIs are "since the deployment": a restart rebuilds them from the trades stored since, not from zero.
TEST_F(DeploymentServiceTest, LiveKpisSurviveARestart) {
  IngestAndWaitForReport();
  const std::string job = RunJob();
  grpc::ClientContext approve_context;
  clm::v1::ApproveRequest approve;
  approve.set_job_id(job);
  approve.set_stage(clm::v1::STAGE_PRODUCTION);
  approve.set_approver("alice");
  approve.set_reason("reviewed");
  approve.set_skip_shadow(true);
  clm::v1::DeploymentVersion version;
  ASSERT_TRUE(deployment_->Approve(&approve_context, approve, &version).ok());
  clm::v1::RecordRequest more;
  for (int i = 0; i < 40; ++i) {
    *more.add_trades() = clm::testing::MakeTrade(absl::StrCat("after-", i), 0.6,
                                                 i % 2 ? TradeOutcome::WIN : TradeOutcome::LOSS);
  }
  grpc::ClientContext record_context;
  clm::v1::IngestAck ack;
  ASSERT_TRUE(ingest_->Record(&record_context, more, &ack).ok());
  ASSERT_EQ(ack.accepted(), 40u);

  auto live = [this] {
    grpc::ClientContext context;
    clm::v1::ListDeploymentsResponse list;
    EXPECT_TRUE(deployment_->List(&context, clm::v1::ListDeploymentsRequest(), &list).ok());
    return list.versions(0).live();
  };
  const clm::v1::LiveKpis before = live();
  EXPECT_EQ(before.trades(), 40u);
  Restart();
  const clm::v1::LiveKpis after = live();
  EXPECT_EQ(after.trades(), 40u);
  EXPECT_DOUBLE_EQ(after.mse_production(), before.mse_production());
  EXPECT_DOUBLE_EQ(after.cumulative_pnl(), before.cumulative_pnl());
}

}  // namespace
}  // namespace clm::server
