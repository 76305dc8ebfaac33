// clm.v1.CadenceStatus over real gRPC: the real Server on 127.0.0.1:0 with a temporary data directory, and
// the service alone over a monitor with a fake job launcher (automatic modes need one).
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clm/v1/cadence.grpc.pb.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "lib/cadence/evaluator.h"
#include "lib/cadence/in_memory_state_store.h"
#include "lib/cadence/monitor.h"
#include "lib/cadence/policy.h"
#include "lib/config/config.h"
#include "server/cadence_status_service.h"
#include "server/metrics.h"
#include "server/server.h"
#include "tests/cadence/fakes.h"
#include "tests/testing/test_util.h"

namespace clm::server {
namespace {

using clm::testing::MakeTrade;
using clm::v1::CadenceReport;
using clm::v1::TradeOutcome;

constexpr int64_t kSpanSeconds = 276480;  // 3.2 days

std::chrono::system_clock::time_point Deadline(int seconds = 30) {
  return std::chrono::system_clock::now() + std::chrono::seconds(seconds);
}

// Reads reports until one satisfies `done`; false when the stream ends first.
bool ReadUntil(grpc::ClientReaderInterface<CadenceReport>* reader, CadenceReport* report,
               const std::function<bool(const CadenceReport&)>& done) {
  while (reader->Read(report)) {
    if (done(*report)) return true;
  }
  return false;
}

// The audit's data set: 748 trades closed over exactly 3.2 days, 288 WIN, 248 LOSS, 212 NEUTRAL, on four
// symbols (BTCUSDT 301, ETHUSDT 190, SOLUSDT 190, BANANAS31USDT 67) and three model ids.
clm::v1::RecordRequest WorkedExample() {
  clm::v1::RecordRequest request;
  request.set_batch_id(1);
  const int64_t base = absl::ToUnixSeconds(absl::Now()) - 4 * 86400;
  const char* models[] = {"test_fix_v2_None", "ensemble_None", "autonomous_exit_None"};
  for (int i = 0; i < 748; ++i) {
    const TradeOutcome::Outcome outcome =
        i < 288 ? TradeOutcome::WIN : (i < 536 ? TradeOutcome::LOSS : TradeOutcome::NEUTRAL);
    const int bucket = (i * 337) % 748;  // 337 is coprime with 748: a permutation, mixing symbols and outcomes
    const char* symbol = bucket < 301 ? "BTCUSDT" : bucket < 491 ? "ETHUSDT" : bucket < 681 ? "SOLUSDT" : "BANANAS31USDT";
    TradeOutcome t = MakeTrade(absl::StrCat("w-", i), 0.55, outcome, absl::Hours(1), symbol);
    t.set_model_id(models[i % 3]);
    const int64_t closed = base + static_cast<int64_t>(i) * kSpanSeconds / 747;
    t.mutable_closed_at()->set_seconds(closed);
    t.mutable_opened_at()->set_seconds(closed - 1800);
    *request.add_trades() = std::move(t);
  }
  return request;
}

class CadenceServerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(); }

  void StartServer() {
    clm::v1::ServerConfig given;
    // Evaluate as soon as an ingest burst is committed; the periodic evaluation plays no part here.
    given.mutable_policy()->mutable_monitor()->set_nudge_debounce_ms(debounce_ms_);
    absl::StatusOr<clm::v1::ServerConfig> config = config::ResolveServerConfig(given);
    ASSERT_TRUE(config.ok()) << config.status();
    Server::Options options;
    options.grpc_address = "127.0.0.1:0";
    options.metrics_address = "";
    options.data_dir = dir_.path();
    options.config = *config;
    // Longer than any test should take: a shutdown that waits for it is a failure.
    options.shutdown_grace = absl::Seconds(10);
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    cadence_ = clm::v1::CadenceStatus::NewStub(channel_);
    ingest_ = clm::v1::TradeIngest::NewStub(channel_);
  }

  void StopServer() {
    cadence_.reset();
    ingest_.reset();
    channel_.reset();
    server_.reset();
  }

  grpc::Status GetStatus(const std::string& symbol, const std::string& model_id, CadenceReport* report) {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    clm::v1::GetStatusRequest request;
    request.set_symbol(symbol);
    request.set_model_id(model_id);
    return cadence_->GetStatus(&context, request, report);
  }

  grpc::Status SetMode(clm::v1::LearningMode mode, const std::string& by, const std::string& reason,
                       clm::v1::SetModeResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    clm::v1::SetModeRequest request;
    request.set_mode(mode);
    request.set_changed_by(by);
    request.set_reason(reason);
    return cadence_->SetMode(&context, request, response);
  }

  clm::v1::GetPolicyResponse GetPolicy() {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    clm::v1::GetPolicyResponse response;
    grpc::Status status = cadence_->GetPolicy(&context, clm::v1::GetPolicyRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // Ingests the worked example and waits, on a watch, for the monitor's report of it.
  void IngestWorkedExample() {
    grpc::ClientContext watch_context;
    watch_context.set_deadline(Deadline());
    auto watch = cadence_->WatchStatus(&watch_context, clm::v1::WatchStatusRequest());
    CadenceReport report;
    ASSERT_TRUE(watch->Read(&report));
    EXPECT_EQ(report.data().total_trades(), 0u);

    grpc::ClientContext context;
    context.set_deadline(Deadline());
    clm::v1::IngestAck ack;
    grpc::Status status = ingest_->Record(&context, WorkedExample(), &ack);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(ack.accepted(), 748u);
    ASSERT_TRUE(ReadUntil(watch.get(), &report, [](const CadenceReport& r) {
      return r.data().total_trades() == 748;
    })) << "the ingest burst did not produce a report";
    watch_context.TryCancel();
    while (watch->Read(&report)) {
    }
    EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }

  int64_t debounce_ms_ = 0;
  clm::testing::TempDir dir_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<clm::v1::CadenceStatus::Stub> cadence_;
  std::unique_ptr<clm::v1::TradeIngest::Stub> ingest_;
};

// The longest debounce the policy allows: a reader that waited for the monitor's debounced evaluation
// would see the trades a minute late, far beyond any wait below.
class ReadYourWritesServerTest : public CadenceServerTest {
 protected:
  void SetUp() override {
    debounce_ms_ = 60000;
    CadenceServerTest::SetUp();
  }

  // `n` trades closed over the last days, WIN and LOSS alternating.
  static clm::v1::RecordRequest Batch(int round, int n) {
    clm::v1::RecordRequest request;
    request.set_batch_id(static_cast<uint64_t>(round) + 1);
    for (int i = 0; i < n; ++i) {
      *request.add_trades() = MakeTrade(absl::StrCat("r", round, "-", i), 0.6,
                                        i % 2 == 0 ? TradeOutcome::WIN : TradeOutcome::LOSS,
                                        absl::Hours(1 + round * 7 + i));
    }
    return request;
  }

  // The first report of a watch started now.
  uint64_t FirstWatchedTotal() {
    grpc::ClientContext context;
    context.set_deadline(Deadline(10));
    auto watch = cadence_->WatchStatus(&context, clm::v1::WatchStatusRequest());
    CadenceReport report;
    const bool got = watch->Read(&report);
    context.TryCancel();
    while (watch->Read(&report)) {
    }
    watch->Finish();
    return got ? report.data().total_trades() : UINT64_MAX;
  }
};

TEST_F(CadenceServerTest, WorkedExampleComesOutExactlyThroughGrpc) {
  IngestWorkedExample();
  CadenceReport r;
  grpc::Status status = GetStatus("", "", &r);
  ASSERT_TRUE(status.ok()) << status.error_message();

  const auto& q = r.data();
  EXPECT_EQ(q.total_trades(), 748u);
  EXPECT_EQ(q.wins(), 288u);
  EXPECT_EQ(q.losses(), 248u);
  EXPECT_EQ(q.neutrals(), 212u);
  EXPECT_DOUBLE_EQ(q.win_rate(), 288.0 / 536.0);
  EXPECT_NEAR(q.win_rate(), 0.537, 5e-4);
  EXPECT_NEAR(q.loss_rate(), 0.463, 5e-4);
  EXPECT_NEAR(q.win_share(), 0.385, 5e-4);
  EXPECT_NEAR(q.loss_share(), 0.332, 5e-4);
  EXPECT_NEAR(q.neutral_share(), 0.283, 5e-4);
  EXPECT_NEAR(q.span_days(), 3.2, 1e-9);
  ASSERT_EQ(q.symbols_size(), 4);
  EXPECT_EQ(q.symbols(0).symbol(), "BTCUSDT");
  EXPECT_EQ(q.symbols(0).trades(), 301u);
  EXPECT_EQ(q.symbols(3).symbol(), "BANANAS31USDT");
  EXPECT_EQ(q.symbols(3).trades(), 67u);
  EXPECT_EQ(q.model_ids_size(), 3);

  EXPECT_TRUE(r.all_gates_passed());
  ASSERT_EQ(r.levels_size(), 3);
  EXPECT_EQ(r.levels(0).level(), clm::v1::CALIBRATION);
  EXPECT_TRUE(r.levels(0).authorized());
  EXPECT_EQ(r.levels(1).level(), clm::v1::SHADOW);
  EXPECT_TRUE(r.levels(1).authorized());
  EXPECT_EQ(r.levels(2).level(), clm::v1::PRODUCTION);
  EXPECT_FALSE(r.levels(2).authorized());
  EXPECT_EQ(r.levels(2).reason(), "not authorized: too few days: 3.2 of 14.0; manual approval required");
  EXPECT_EQ(r.highest_authorized_level(), clm::v1::SHADOW);
  EXPECT_TRUE(r.trigger_fired());
  EXPECT_EQ(r.fired_trigger().type(), clm::v1::TRIGGER_BATCH);
  EXPECT_EQ(r.fired_trigger().new_trades_since_training(), 748u);
  EXPECT_EQ(r.fired_trigger().threshold(), 100u);
  EXPECT_EQ(r.total_trainings(), 0u);
  EXPECT_FALSE(r.has_seconds_since_last_training());
  EXPECT_TRUE(r.ready());
  EXPECT_EQ(r.mode(), clm::v1::LOGGING_ONLY);
  EXPECT_EQ(r.summary(),
            "748 trades over 3.2 days (WIN 38.5%, LOSS 33.2%, NEUTRAL 28.3%, win rate 53.7%); gates 4/4 "
            "passed; CALIBRATION yes, SHADOW yes, PRODUCTION no (manual approval); BATCH fired 748/100 new "
            "trades; mode LOGGING_ONLY; ready");
  EXPECT_NE(cadence::FormatReportText(r).find("win rate 53.7%, loss rate 46.3%; shares WIN 38.5%, LOSS 33.2%, "
                                              "NEUTRAL 28.3%"),
            std::string::npos)
      << cadence::FormatReportText(r);
}

TEST_F(CadenceServerTest, ScopedStatusCountsOnlyTheScope) {
  IngestWorkedExample();
  CadenceReport btc;
  ASSERT_TRUE(GetStatus("BTCUSDT", "", &btc).ok());
  EXPECT_EQ(btc.symbol(), "BTCUSDT");
  EXPECT_EQ(btc.data().total_trades(), 301u);
  ASSERT_EQ(btc.data().symbols_size(), 1);
  EXPECT_EQ(btc.data().wins() + btc.data().losses() + btc.data().neutrals(), 301u);

  CadenceReport model;
  ASSERT_TRUE(GetStatus("", "ensemble_None", &model).ok());
  EXPECT_EQ(model.model_id(), "ensemble_None");
  EXPECT_EQ(model.data().total_trades(), 249u);  // i % 3 == 1 for i in [0, 748)
  ASSERT_EQ(model.data().model_ids_size(), 1);

  CadenceReport bananas;
  ASSERT_TRUE(GetStatus("BANANAS31USDT", "", &bananas).ok());
  EXPECT_EQ(bananas.data().total_trades(), 67u);
  EXPECT_FALSE(bananas.levels(1).authorized());  // 67 trades: SHADOW needs 100
  EXPECT_EQ(bananas.fired_trigger().new_trades_since_training(), 67u);

  CadenceReport none;
  ASSERT_TRUE(GetStatus("DOGEUSDT", "ensemble_None", &none).ok());
  EXPECT_EQ(none.data().total_trades(), 0u);
  EXPECT_FALSE(none.all_gates_passed());

  CadenceReport ignored;
  grpc::Status status = GetStatus(std::string(65, 'X'), "", &ignored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "symbol: must be at most 64 bytes, got 65");
}

TEST_F(CadenceServerTest, ModeChangeIsPersistedWithWhoAndWhyAcrossRestart) {
  clm::v1::GetPolicyResponse before = GetPolicy();
  EXPECT_EQ(before.mode(), clm::v1::LOGGING_ONLY);
  EXPECT_FALSE(before.has_last_mode_change());
  EXPECT_EQ(before.policy().monitor().interval_seconds(), 300);  // defaults filled in
  EXPECT_EQ(before.policy().triggers().batch_new_trades(), 100);

  clm::v1::SetModeResponse response;
  grpc::Status status = SetMode(clm::v1::LOGGING_ONLY, "alice@ops", "audit week: report only", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.change().changed_by(), "alice@ops");
  EXPECT_EQ(response.change().from_mode(), clm::v1::LOGGING_ONLY);
  EXPECT_EQ(response.change().to_mode(), clm::v1::LOGGING_ONLY);
  const int64_t changed_at = response.change().changed_at().seconds();
  EXPECT_GT(changed_at, 0);

  StopServer();
  StartServer();
  clm::v1::GetPolicyResponse after = GetPolicy();
  EXPECT_EQ(after.mode(), clm::v1::LOGGING_ONLY);
  ASSERT_TRUE(after.has_last_mode_change());
  EXPECT_EQ(after.last_mode_change().changed_by(), "alice@ops");
  EXPECT_EQ(after.last_mode_change().reason(), "audit week: report only");
  EXPECT_EQ(after.last_mode_change().to_mode(), clm::v1::LOGGING_ONLY);
  EXPECT_EQ(after.last_mode_change().changed_at().seconds(), changed_at);

  // The monitor's decisions survived too.
  grpc::ClientContext context;
  clm::v1::GetMonitorHistoryRequest request;
  clm::v1::GetMonitorHistoryResponse history;
  ASSERT_TRUE(cadence_->GetMonitorHistory(&context, request, &history).ok());
  ASSERT_GE(history.decisions_size(), 1);
  EXPECT_EQ(history.decisions(0).reason(), "no trigger fired");
}

// The old module sat in "logging only" for days with every gate passed. In AUTO_CALIBRATE the server learns
// by itself: the fired trigger submits a job through the job system, the job records a training, and the
// report then counts new trades from it.
TEST_F(CadenceServerTest, AutoCalibrateTrainsWhenTheTriggerFires) {
  clm::v1::SetModeResponse response;
  grpc::Status status = SetMode(clm::v1::AUTO_CALIBRATE, "alice@ops", "learn by itself", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  grpc::ClientContext watch_context;
  watch_context.set_deadline(Deadline());
  auto watch = cadence_->WatchStatus(&watch_context, clm::v1::WatchStatusRequest());
  CadenceReport report;
  ASSERT_TRUE(watch->Read(&report));
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  clm::v1::IngestAck ack;
  ASSERT_TRUE(ingest_->Record(&context, WorkedExample(), &ack).ok());
  ASSERT_TRUE(ReadUntil(watch.get(), &report, [](const CadenceReport& r) { return r.total_trainings() == 1; }))
      << "no training was recorded";
  EXPECT_EQ(report.data().total_trades(), 748u);
  EXPECT_EQ(report.triggers(0).new_trades_since_training(), 0u);
  EXPECT_FALSE(report.ready());
  watch_context.TryCancel();
  while (watch->Read(&report)) {
  }
  watch->Finish();

  grpc::ClientContext history_context;
  clm::v1::GetMonitorHistoryResponse history;
  ASSERT_TRUE(cadence_->GetMonitorHistory(&history_context, clm::v1::GetMonitorHistoryRequest(), &history).ok());
  bool submitted = false;
  for (const auto& decision : history.decisions()) {
    if (decision.action() == clm::v1::MONITOR_ACTION_ACTED &&
        decision.operation() == clm::v1::MONITOR_OPERATION_SUBMIT_CALIBRATION) {
      submitted = true;
      EXPECT_EQ(decision.job_id().rfind("cal_", 0), 0u) << decision.job_id();
    }
  }
  EXPECT_TRUE(submitted) << "the monitor did not record submitting the job";
}

TEST_F(CadenceServerTest, InvalidRequestsNameTheField) {
  clm::v1::SetModeResponse response;
  grpc::Status status = SetMode(clm::v1::LEARNING_MODE_UNSPECIFIED, "alice", "why", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "mode: must be LOGGING_ONLY, AUTO_CALIBRATE or AUTO_SHADOW");
  status = SetMode(clm::v1::LOGGING_ONLY, "", "why", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message().rfind("changed_by: ", 0), 0u) << status.error_message();
  status = SetMode(clm::v1::LOGGING_ONLY, "alice", "", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message().rfind("reason: ", 0), 0u) << status.error_message();
  EXPECT_FALSE(GetPolicy().has_last_mode_change()) << "a refused change must not be recorded";

  grpc::ClientContext context;
  clm::v1::GetMonitorHistoryRequest request;
  request.set_limit(1001);
  clm::v1::GetMonitorHistoryResponse history;
  status = cadence_->GetMonitorHistory(&context, request, &history);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "limit: must be at most 1000, got 1001");
}

TEST_F(CadenceServerTest, CancelledWatchLeavesTheServerHealthy) {
  for (int round = 0; round < 3; ++round) {
    grpc::ClientContext context;
    auto watch = cadence_->WatchStatus(&context, clm::v1::WatchStatusRequest());
    CadenceReport report;
    ASSERT_TRUE(watch->Read(&report));  // the current report, at once
    EXPECT_EQ(report.mode(), clm::v1::LOGGING_ONLY);
    context.TryCancel();
    while (watch->Read(&report)) {
    }
    EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // Later reports reach later watchers; nothing is delivered to the cancelled ones (or the server would
  // crash on a deleted reactor).
  IngestWorkedExample();
  CadenceReport report;
  ASSERT_TRUE(GetStatus("", "", &report).ok());
  EXPECT_EQ(report.data().total_trades(), 748u);
}

TEST_F(CadenceServerTest, ShutdownWithAnOpenWatchFinishesPromptly) {
  grpc::ClientContext context;
  auto watch = cadence_->WatchStatus(&context, clm::v1::WatchStatusRequest());
  CadenceReport report;
  ASSERT_TRUE(watch->Read(&report));
  const absl::Time start = absl::Now();
  std::thread stopper([&] { server_->Shutdown(); });
  EXPECT_FALSE(watch->Read(&report));
  grpc::Status status = watch->Finish();
  stopper.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << "shutdown waited for the grace period";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

// Read your writes: a GetStatus or a watch started right after an ack sees the acknowledged trades, though the
// monitor's own evaluation waits a minute. Unary Record and the Ingest stream alike, round after round, so a
// lag of any length would be caught.
TEST_F(ReadYourWritesServerTest, GetStatusAndWatchRightAfterTheAckSeeTheTrades) {
  grpc::ClientContext stream_context;
  stream_context.set_deadline(Deadline(60));
  auto stream = ingest_->Ingest(&stream_context);
  uint64_t total = 0;
  for (int round = 0; round < 20; ++round) {
    const int n = 1 + round % 7;
    clm::v1::RecordRequest batch = Batch(round, n);
    clm::v1::IngestAck ack;
    if (round % 2 == 0) {
      grpc::ClientContext context;
      context.set_deadline(Deadline());
      grpc::Status status = ingest_->Record(&context, batch, &ack);
      ASSERT_TRUE(status.ok()) << status.error_message();
    } else {
      clm::v1::IngestRequest request;
      request.set_batch_id(batch.batch_id());
      *request.mutable_trades() = batch.trades();
      ASSERT_TRUE(stream->Write(request));
      ASSERT_TRUE(stream->Read(&ack));
    }
    ASSERT_EQ(ack.accepted(), static_cast<uint32_t>(n));
    total += static_cast<uint64_t>(n);

    CadenceReport report;
    grpc::Status status = GetStatus("", "", &report);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(report.data().total_trades(), total) << "GetStatus lagged the ack of round " << round;
    ASSERT_EQ(FirstWatchedTotal(), total) << "WatchStatus lagged the ack of round " << round;
  }
  stream->WritesDone();
  clm::v1::IngestAck ignored;
  while (stream->Read(&ignored)) {
  }
  EXPECT_TRUE(stream->Finish().ok());

  // The decision waits for the burst to settle: only the startup evaluation decided so far.
  grpc::ClientContext history_context;
  clm::v1::GetMonitorHistoryResponse history;
  ASSERT_TRUE(cadence_->GetMonitorHistory(&history_context, clm::v1::GetMonitorHistoryRequest(), &history).ok());
  ASSERT_EQ(history.decisions_size(), 1);
  EXPECT_EQ(history.decisions(0).new_trades_since_training(), 0u);
}

// The service alone, over a monitor with a job launcher, so an operator can switch to an automatic mode.
class CadenceServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cadence::SourceSnapshot snapshot;
    snapshot.data.total = 10;
    snapshot.data.wins = 5;
    snapshot.data.losses = 5;
    snapshot.data.first_closed_at_us = absl::ToUnixMicros(absl::Now() - absl::Hours(30));
    snapshot.data.last_closed_at_us = absl::ToUnixMicros(absl::Now() - absl::Hours(1));
    snapshot.data.symbols = {{"BTCUSDT", 10}};
    snapshot.data.model_ids = {"m"};
    snapshot.data.new_trades_since_training = 10;
    source_.Set(snapshot);
    clm::v1::CadencePolicy policy;
    policy.mutable_monitor()->set_nudge_debounce_ms(0);
    auto monitor = cadence::Monitor::Create(policy, {&source_, &state_, &clock_, &launcher_});
    ASSERT_TRUE(monitor.ok()) << monitor.status();
    monitor_ = std::move(*monitor);
    ASSERT_TRUE(monitor_->Start().ok());
    auto auth = Authenticator::Create({}, *metrics_.registry());  // authentication off
    ASSERT_TRUE(auth.ok()) << auth.status();
    auth_ = *std::move(auth);
    service_ = std::make_unique<CadenceStatusService>(monitor_.get(), &metrics_, auth_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = clm::v1::CadenceStatus::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    stub_.reset();
    if (server_ != nullptr) {
      service_->FinishWatches();
      server_->Shutdown(Deadline(5));
      server_->Wait();
    }
    monitor_->Stop();
  }

  grpc::Status SetMode(clm::v1::LearningMode mode) {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    clm::v1::SetModeRequest request;
    request.set_mode(mode);
    request.set_changed_by("bob");
    request.set_reason(absl::StrCat("try ", cadence::ModeName(mode)));
    clm::v1::SetModeResponse response;
    return stub_->SetMode(&context, request, &response);
  }

  Metrics metrics_;
  std::unique_ptr<Authenticator> auth_;
  cadence::testing::FakeSource source_;
  cadence::InMemoryCadenceStateStore state_;
  cadence::SystemClock clock_;
  cadence::testing::FakeLauncher launcher_;
  std::unique_ptr<cadence::Monitor> monitor_;
  std::unique_ptr<CadenceStatusService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<clm::v1::CadenceStatus::Stub> stub_;
};

TEST_F(CadenceServiceTest, WatchGetsTheReportAtOnceThenEachModeChange) {
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  auto watch = stub_->WatchStatus(&context, clm::v1::WatchStatusRequest());
  CadenceReport report;
  ASSERT_TRUE(watch->Read(&report));
  EXPECT_EQ(report.mode(), clm::v1::LOGGING_ONLY);
  EXPECT_EQ(report.data().total_trades(), 10u);

  ASSERT_TRUE(SetMode(clm::v1::AUTO_CALIBRATE).ok());
  ASSERT_TRUE(watch->Read(&report));
  EXPECT_EQ(report.mode(), clm::v1::AUTO_CALIBRATE);
  ASSERT_TRUE(SetMode(clm::v1::AUTO_SHADOW).ok());
  ASSERT_TRUE(ReadUntil(watch.get(), &report, [](const CadenceReport& r) { return r.mode() == clm::v1::AUTO_SHADOW; }));

  // New data: the next evaluation's report reaches the watcher too.
  cadence::SourceSnapshot more;
  more.data.total = 20;
  more.data.wins = 10;
  more.data.losses = 10;
  more.data.new_trades_since_training = 20;
  source_.Set(more);
  monitor_->Nudge();
  ASSERT_TRUE(ReadUntil(watch.get(), &report, [](const CadenceReport& r) { return r.data().total_trades() == 20; }));
  EXPECT_EQ(report.mode(), clm::v1::AUTO_SHADOW);

  // GetPolicy reports the operator's choice, with who and why.
  grpc::ClientContext policy_context;
  clm::v1::GetPolicyResponse policy;
  ASSERT_TRUE(stub_->GetPolicy(&policy_context, clm::v1::GetPolicyRequest(), &policy).ok());
  EXPECT_EQ(policy.mode(), clm::v1::AUTO_SHADOW);
  EXPECT_EQ(policy.last_mode_change().from_mode(), clm::v1::AUTO_CALIBRATE);
  EXPECT_EQ(policy.last_mode_change().changed_by(), "bob");
  EXPECT_EQ(policy.last_mode_change().reason(), "try AUTO_SHADOW");
  auto persisted = state_.LoadModeChanges(10);
  ASSERT_TRUE(persisted.ok());
  EXPECT_EQ(persisted->size(), 2u);
}

TEST_F(CadenceServiceTest, ManyWatchersEachGetEveryChangeAndCancelMidStream) {
  constexpr int kWatchers = 8;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReaderInterface<CadenceReport>>> watches;
  CadenceReport report;
  for (int i = 0; i < kWatchers; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->set_deadline(Deadline());
    watches.push_back(stub_->WatchStatus(contexts.back().get(), clm::v1::WatchStatusRequest()));
    ASSERT_TRUE(watches.back()->Read(&report));
  }
  // Half of them go away mid-stream; the rest keep receiving.
  for (int i = 0; i < kWatchers; i += 2) contexts[i]->TryCancel();
  ASSERT_TRUE(SetMode(clm::v1::AUTO_CALIBRATE).ok());
  for (int i = 0; i < kWatchers; ++i) {
    if (i % 2 == 0) {
      while (watches[i]->Read(&report)) {
      }
      EXPECT_EQ(watches[i]->Finish().error_code(), grpc::StatusCode::CANCELLED);
      continue;
    }
    ASSERT_TRUE(ReadUntil(watches[i].get(), &report,
                          [](const CadenceReport& r) { return r.mode() == clm::v1::AUTO_CALIBRATE; }));
  }
  // Server shutdown ends the remaining ones with UNAVAILABLE, without waiting for the grace period.
  const absl::Time start = absl::Now();
  service_->FinishWatches();
  server_->Shutdown(Deadline(10));
  server_->Wait();
  server_.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  for (int i = 1; i < kWatchers; i += 2) {
    while (watches[i]->Read(&report)) {
    }
    EXPECT_EQ(watches[i]->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  }
}

TEST_F(CadenceServiceTest, HistoryAndScopedStatus) {
  grpc::ClientContext context;
  clm::v1::GetStatusRequest request;
  request.set_symbol("BTCUSDT");
  CadenceReport report;
  ASSERT_TRUE(stub_->GetStatus(&context, request, &report).ok());
  EXPECT_EQ(report.symbol(), "BTCUSDT");
  ASSERT_FALSE(source_.scopes().empty());
  EXPECT_EQ(source_.scopes().back().symbol, "BTCUSDT");

  grpc::ClientContext history_context;
  clm::v1::GetMonitorHistoryRequest history_request;
  history_request.set_limit(1);
  clm::v1::GetMonitorHistoryResponse history;
  ASSERT_TRUE(stub_->GetMonitorHistory(&history_context, history_request, &history).ok());
  ASSERT_EQ(history.decisions_size(), 1);
  EXPECT_EQ(history.decisions(0).reason(), "no trigger fired");
}

}  // namespace
}  // namespace clm::server
