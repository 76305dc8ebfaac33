// A calibration job running when the server process dies is never left RUNNING: after a restart it is
// FAILED with a reason an operator can act on, and a new job runs normally.
#include <signal.h>

#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "clm/v1/calibration_job.grpc.pb.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace clm {
namespace {

using clm::v1::Job;

std::unique_ptr<clm::testing::ServerProcess> StartServer(const std::string& data_dir, std::string* address) {
  auto server = std::make_unique<clm::testing::ServerProcess>(CLM_SERVER_BINARY, data_dir);
  *address = server->address();
  return server;
}

TEST(JobRecoveryTest, JobRunningAtSigkillIsFailedAfterRestart) {
  clm::testing::TempDir dir;
  std::string address;
  auto server = StartServer(dir.path(), &address);
  ASSERT_TRUE(clm::testing::WaitForServing(address, absl::Seconds(20)));
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto ingest = clm::v1::TradeIngest::NewStub(channel);
  auto jobs = clm::v1::CalibrationJob::NewStub(channel);

  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int b = 0; b < 10; ++b) {
    clm::v1::RecordRequest request;
    for (int i = 0; i < 1000; ++i) {
      double c = u(rng);
      *request.add_trades() = clm::testing::MakeTrade(
          absl::StrCat("r", b, "-", i), c, u(rng) < c ? clm::v1::TradeOutcome::WIN : clm::v1::TradeOutcome::LOSS,
          absl::Hours(1) + absl::Minutes(b * 1000 + i));
    }
    grpc::ClientContext context;
    clm::v1::IngestAck ack;
    ASSERT_TRUE(ingest->Record(&context, request, &ack).ok());
  }

  // 10,000 trades and 100,000 bootstrap resamples: the job runs for many seconds.
  grpc::ClientContext submit_context;
  clm::v1::SubmitJobRequest slow;
  slow.mutable_options()->set_bootstrap_resamples(100000);
  Job job;
  ASSERT_TRUE(jobs->Submit(&submit_context, slow, &job).ok());
  {
    grpc::ClientContext watch_context;
    clm::v1::WatchJobRequest watch;
    watch.set_id(job.id());
    auto reader = jobs->Watch(&watch_context, watch);
    Job update;
    bool running = false;
    while (!running && reader->Read(&update)) running = update.state() == clm::v1::RUNNING;
    ASSERT_TRUE(running);
    server->Signal(SIGKILL);
    EXPECT_EQ(server->Wait(), 128 + SIGKILL);
    while (reader->Read(&update)) {
    }
    reader->Finish();
  }

  server = StartServer(dir.path(), &address);
  ASSERT_TRUE(clm::testing::WaitForServing(address, absl::Seconds(20)));
  {
    // Every context keeps its channel alive: all of them go before the server is stopped (a connection with
    // a flow-control (BDP) ping in flight holds a stopping gRPC 1.51 server until its grace period ends).
    channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    jobs = clm::v1::CalibrationJob::NewStub(channel);
    grpc::ClientContext get_context;
    clm::v1::GetJobRequest get;
    get.set_id(job.id());
    Job recovered;
    ASSERT_TRUE(jobs->Get(&get_context, get, &recovered).ok());
    EXPECT_EQ(recovered.state(), clm::v1::FAILED);
    EXPECT_EQ(recovered.error(), "the server stopped while this job was running (crash or kill); submit it again");
    EXPECT_TRUE(recovered.has_finished_at());

    // The job system works on: a normal job succeeds.
    grpc::ClientContext again_context;
    Job again;
    ASSERT_TRUE(jobs->Submit(&again_context, clm::v1::SubmitJobRequest(), &again).ok());
    {
      grpc::ClientContext watch_context;
      clm::v1::WatchJobRequest watch;
      watch.set_id(again.id());
      auto reader = jobs->Watch(&watch_context, watch);
      Job update;
      while (reader->Read(&update)) {
      }
      ASSERT_TRUE(reader->Finish().ok());
      EXPECT_EQ(update.state(), clm::v1::SUCCEEDED);
    }
  }
  // Disconnect before stopping, as the other end-to-end tests do (see reflection_test.cc).
  jobs.reset();
  ingest.reset();
  channel.reset();
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0);
}

}  // namespace
}  // namespace clm
