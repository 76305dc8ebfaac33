// CalibrationJob over real gRPC: the real Server on 127.0.0.1:0 with trades ingested through TradeIngest.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clm/v1/calibration_job.grpc.pb.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lib/config/config.h"
#include "server/server.h"
#include "tests/testing/test_util.h"

namespace clm::server {
namespace {

using clm::v1::Job;
using clm::v1::TradeOutcome;

class CalibrationJobServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  void Start() {
    Server::Options options;
    options.grpc_address = "127.0.0.1:0";
    options.metrics_address = "";
    options.data_dir = dir_.path();
    options.config = *config::ResolveServerConfig({});
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                       grpc::InsecureChannelCredentials());
    ingest_ = clm::v1::TradeIngest::NewStub(channel);
    jobs_ = clm::v1::CalibrationJob::NewStub(channel);
  }

  void Restart() {
    jobs_.reset();
    ingest_.reset();
    server_.reset();
    Start();
  }

  // 100 trades per batch, 12 minutes apart, from an engine over-confident in 0.50-0.70.
  void IngestOverConfidentTrades(int batches = 6) {
    std::mt19937_64 rng(11);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int b = 0; b < batches; ++b) {
      clm::v1::RecordRequest request;
      request.set_batch_id(b);
      for (int i = 0; i < 100; ++i) {
        double confidence = 0.45 + 0.5 * u(rng);
        double p = confidence < 0.70 ? 0.38 : confidence;
        *request.add_trades() = clm::testing::MakeTrade(
            absl::StrCat("t", b, "-", i), confidence, u(rng) < p ? TradeOutcome::WIN : TradeOutcome::LOSS,
            absl::Hours(1) + absl::Minutes(12 * (b * 100 + i)), i % 2 ? "BTCUSDT" : "ETHUSDT");
      }
      grpc::ClientContext context;
      clm::v1::IngestAck ack;
      ASSERT_TRUE(ingest_->Record(&context, request, &ack).ok());
      ASSERT_EQ(ack.accepted(), 100u);
    }
  }

  // Follows the job with Watch until the stream ends; returns every message.
  std::vector<Job> Watch(const std::string& id, grpc::Status* status) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    clm::v1::WatchJobRequest request;
    request.set_id(id);
    auto reader = jobs_->Watch(&context, request);
    std::vector<Job> seen;
    Job job;
    while (reader->Read(&job)) seen.push_back(job);
    *status = reader->Finish();
    return seen;
  }

  clm::testing::TempDir dir_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<clm::v1::TradeIngest::Stub> ingest_;
  std::unique_ptr<clm::v1::CalibrationJob::Stub> jobs_;
};

TEST_F(CalibrationJobServiceTest, SubmitWatchReportAndSurviveRestart) {
  IngestOverConfidentTrades();
  grpc::ClientContext context;
  clm::v1::SubmitJobRequest request;
  request.set_submitted_by("operator");
  request.set_reason("first calibration");
  Job submitted;
  ASSERT_TRUE(jobs_->Submit(&context, request, &submitted).ok());
  EXPECT_EQ(submitted.state(), clm::v1::QUEUED);
  EXPECT_EQ(submitted.id().rfind("cal_", 0), 0u);

  grpc::Status status;
  std::vector<Job> seen = Watch(submitted.id(), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().state(), clm::v1::SUCCEEDED);
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_GE(seen[i].state(), seen[i - 1].state());
    EXPECT_GE(seen[i].progress(), seen[i - 1].progress());
  }

  grpc::ClientContext report_context;
  clm::v1::GetReportRequest report_request;
  report_request.set_id(submitted.id());
  clm::v1::JobReport report;
  ASSERT_TRUE(jobs_->GetReport(&report_context, report_request, &report).ok());
  EXPECT_NE(report.markdown().find(submitted.id()), std::string::npos);
  EXPECT_NE(report.markdown().find("over-confident"), std::string::npos) << report.markdown();
  EXPECT_NE(report.json().find("\"global_map\""), std::string::npos);

  Restart();
  grpc::ClientContext get_context;
  clm::v1::GetJobRequest get;
  get.set_id(submitted.id());
  Job stored;
  ASSERT_TRUE(jobs_->Get(&get_context, get, &stored).ok());
  EXPECT_EQ(stored.state(), clm::v1::SUCCEEDED);
  EXPECT_EQ(stored.trades_seen(), 600u);
  EXPECT_GT(stored.result().global_map().x_thresholds_size(), 0);
  EXPECT_EQ(stored.request().reason(), "first calibration");

  // Watching an ended job sends it once and ends.
  seen = Watch(submitted.id(), &status);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].state(), clm::v1::SUCCEEDED);
}

TEST_F(CalibrationJobServiceTest, ErrorsNameTheFieldAndTheRule) {
  grpc::ClientContext c1;
  clm::v1::GetJobRequest get;
  get.set_id("cal_19990101_000000");
  Job job;
  grpc::Status status = jobs_->Get(&c1, get, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "id: no job cal_19990101_000000");

  grpc::ClientContext c2;
  clm::v1::SubmitJobRequest bad;
  bad.mutable_options()->set_bins(0);
  bad.mutable_options()->set_folds(1);
  status = jobs_->Submit(&c2, bad, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // The field's path from the request, once (it used to read "options.options.folds").
  EXPECT_EQ(status.error_message(), "options.folds: must be within [2, 100], got 1");

  grpc::ClientContext c2b;
  clm::v1::SubmitJobRequest bad_tolerance;
  bad_tolerance.mutable_options()->set_tolerance(2);
  status = jobs_->Submit(&c2b, bad_tolerance, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message().rfind("options.tolerance: ", 0), 0u) << status.error_message();

  grpc::ClientContext c3;
  clm::v1::WatchJobRequest watch;
  auto reader = jobs_->Watch(&c3, watch);
  while (reader->Read(&job)) {
  }
  status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "id: is required");

  // A job over no trades fails and says why: there is nothing to learn from.
  grpc::ClientContext c4;
  Job empty;
  ASSERT_TRUE(jobs_->Submit(&c4, clm::v1::SubmitJobRequest(), &empty).ok());
  std::vector<Job> seen = Watch(empty.id(), &status);
  ASSERT_TRUE(status.ok());
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().state(), clm::v1::FAILED);
  grpc::ClientContext c5;
  get.set_id(empty.id());
  ASSERT_TRUE(jobs_->Get(&c5, get, &job).ok());
  EXPECT_EQ(job.state(), clm::v1::FAILED);
  EXPECT_EQ(job.error(), "no trades to calibrate on: none are stored yet");
  EXPECT_FALSE(job.has_result());

  grpc::ClientContext c6;
  clm::v1::CancelJobRequest cancel;
  cancel.set_id(empty.id());
  status = jobs_->Cancel(&c6, cancel, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("has already ended (FAILED)"), std::string::npos) << status.error_message();

  grpc::ClientContext c7;
  clm::v1::ListJobsResponse list;
  ASSERT_TRUE(jobs_->List(&c7, clm::v1::ListJobsRequest(), &list).ok());
  ASSERT_EQ(list.jobs_size(), 1);
  EXPECT_FALSE(list.jobs(0).has_result());
}

TEST_F(CalibrationJobServiceTest, WatchesCancelledAtOnceLeaveTheServerHealthy) {
  grpc::ClientContext submit_context;
  Job job;
  ASSERT_TRUE(jobs_->Submit(&submit_context, clm::v1::SubmitJobRequest(), &job).ok());
  for (int i = 0; i < 50; ++i) {
    grpc::ClientContext context;
    clm::v1::WatchJobRequest request;
    request.set_id(i % 2 ? job.id() : "cal_19990101_000000");
    auto reader = jobs_->Watch(&context, request);
    context.TryCancel();  // races the lookup on the server's pool
    Job ignored;
    while (reader->Read(&ignored)) {
    }
    reader->Finish();
  }
  grpc::Status status;
  std::vector<Job> seen = Watch(job.id(), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_FALSE(seen.empty());
  // The store is empty: the job ends, FAILED with nothing to learn from.
  EXPECT_EQ(seen.back().state(), clm::v1::FAILED);
  EXPECT_EQ(seen.back().error(), "no trades to calibrate on: none are stored yet");
}

// A running job is cancelled at its next progress report: 8,000 trades and 100,000 bootstrap resamples make
// it run for seconds, long after the cancel arrives.
TEST_F(CalibrationJobServiceTest, CancelARunningJobOverGrpc) {
  IngestOverConfidentTrades(80);
  grpc::ClientContext submit_context;
  clm::v1::SubmitJobRequest request;
  request.mutable_options()->set_bootstrap_resamples(100000);
  Job job;
  ASSERT_TRUE(jobs_->Submit(&submit_context, request, &job).ok());

  grpc::ClientContext watch_context;
  clm::v1::WatchJobRequest watch_request;
  watch_request.set_id(job.id());
  auto reader = jobs_->Watch(&watch_context, watch_request);
  Job update;
  bool running = false;
  while (!running && reader->Read(&update)) running = update.state() == clm::v1::RUNNING;
  ASSERT_TRUE(running);

  grpc::ClientContext cancel_context;
  clm::v1::CancelJobRequest cancel;
  cancel.set_id(job.id());
  cancel.set_reason("wrong filter");
  Job answer;
  ASSERT_TRUE(jobs_->Cancel(&cancel_context, cancel, &answer).ok());
  while (reader->Read(&update)) {
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(update.state(), clm::v1::CANCELLED);
  EXPECT_EQ(update.error(), "cancelled: wrong filter");
}

}  // namespace
}  // namespace clm::server
