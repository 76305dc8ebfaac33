// A real in-process server prepared so that a job is deployment ready: 1,000 trades from an engine
// over-confident in 0.50-0.70, in ONE Record batch, counted by the cadence report, then one succeeded job.
#ifndef CLM_TESTS_CLIENT_DEPLOYABLE_SERVER_H_
#define CLM_TESTS_CLIENT_DEPLOYABLE_SERVER_H_

#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clm/v1/cadence.grpc.pb.h"
#include "clm/v1/calibration_job.grpc.pb.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lib/config/config.h"
#include "server/server.h"
#include "tests/testing/test_util.h"

namespace clm::testing {

class DeployableServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clm::v1::ServerConfig given;
    given.mutable_policy()->mutable_monitor()->set_nudge_debounce_ms(0);  // the monitor acts at once
    Configure(&given);
    server::Server::Options options;
    options.grpc_address = "127.0.0.1:0";
    options.metrics_address = "";
    options.data_dir = dir_.path();
    absl::StatusOr<clm::v1::ServerConfig> config = config::ResolveServerConfig(given);
    ASSERT_TRUE(config.ok()) << config.status();
    options.config = *config;
    options.shutdown_grace = absl::Seconds(2);
    absl::StatusOr<std::unique_ptr<server::Server>> server = server::Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    address_ = absl::StrCat("127.0.0.1:", server_->grpc_port());
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  }

  // A fixture's own settings, applied before the defaults are filled in.
  virtual void Configure(clm::v1::ServerConfig* config) {}

  // Records `n` trades of the same over-confident engine in one batch, closed `age` ago and earlier, ten
  // minutes apart. `sliced`: spread over three symbols and two model ids (else BTCUSDT / ensemble_v1).
  void RecordTrades(const std::string& prefix, int n, absl::Duration age, uint64_t seed, bool sliced = false) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    clm::v1::RecordRequest request;
    static const char* const kSymbols[] = {"BTCUSDT", "ETHUSDT", "SOLUSDT"};
    static const char* const kModels[] = {"xgboost", "lightgbm"};
    for (int i = 0; i < n; ++i) {
      const double c = 0.45 + 0.5 * u(rng);
      const double p = c < 0.70 ? 0.38 : c;
      clm::v1::TradeOutcome t =
          MakeTrade(absl::StrCat(prefix, i), c, u(rng) < p ? clm::v1::TradeOutcome::WIN : clm::v1::TradeOutcome::LOSS,
                    age + absl::Minutes(10 * (n - i)), sliced ? kSymbols[i % 3] : "BTCUSDT");
      if (sliced) t.set_model_id(kModels[(i / 3) % 2]);
      *request.add_trades() = t;
    }
    auto ingest = clm::v1::TradeIngest::NewStub(channel_);
    grpc::ClientContext record_context;
    clm::v1::IngestAck ack;
    grpc::Status status = ingest->Record(&record_context, request, &ack);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(ack.accepted() + ack.duplicates(), static_cast<uint64_t>(n)) << "stored, or stored before";
  }

  // Ingests 1,000 trades, waits until the cadence report counts them, runs a job; returns its id.
  // `sliced`: the trades span three symbols and two models, and every slice gets its own map.
  std::string PrepareDeployableJob(bool sliced = false,
                                   clm::v1::CalibrationMethod method = clm::v1::CALIBRATION_METHOD_UNSPECIFIED) {
    RecordTrades("d", 1000, absl::Hours(1), 3, sliced);
    auto cadence = clm::v1::CadenceStatus::NewStub(channel_);
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    bool counted = false;
    while (!counted && absl::Now() < deadline) {
      grpc::ClientContext context;
      clm::v1::CadenceReport report;
      EXPECT_TRUE(cadence->GetStatus(&context, clm::v1::GetStatusRequest(), &report).ok());
      counted = report.data().total_trades() == 1000;
      if (!counted) absl::SleepFor(absl::Milliseconds(20));
    }
    EXPECT_TRUE(counted) << "the cadence report never counted the trades";

    auto jobs = clm::v1::CalibrationJob::NewStub(channel_);
    grpc::ClientContext submit_context;
    clm::v1::Job job;
    clm::v1::SubmitJobRequest submit;
    if (sliced) submit.mutable_options()->set_min_slice_trades(150);
    submit.set_method(method);
    EXPECT_TRUE(jobs->Submit(&submit_context, submit, &job).ok());
    grpc::ClientContext watch_context;
    watch_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    clm::v1::WatchJobRequest watch;
    watch.set_id(job.id());
    auto reader = jobs->Watch(&watch_context, watch);
    clm::v1::Job update;
    while (reader->Read(&update)) {
    }
    EXPECT_TRUE(reader->Finish().ok());
    EXPECT_EQ(update.state(), clm::v1::SUCCEEDED) << update.error();
    grpc::ClientContext get_context;
    clm::v1::GetJobRequest get;
    get.set_id(job.id());
    clm::v1::Job done;
    EXPECT_TRUE(jobs->Get(&get_context, get, &done).ok());
    EXPECT_TRUE(done.result().safety().deployment_ready()) << done.result().safety().DebugString();
    return job.id();
  }

  TempDir dir_;
  std::unique_ptr<server::Server> server_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace clm::testing

#endif  // CLM_TESTS_CLIENT_DEPLOYABLE_SERVER_H_
