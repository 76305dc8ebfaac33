// TradeIngest over real gRPC: the real Server on 127.0.0.1:0, talked to through generated stubs.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lib/config/config.h"
#include "lib/store/sqlite_trade_store.h"
#include "server/server.h"
#include "tests/testing/test_util.h"

namespace clm::server {
namespace {

using clm::testing::MakeTrade;
using clm::v1::IngestAck;
using clm::v1::IngestRequest;
using clm::v1::TradeOutcome;

class TradeIngestServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(clm::v1::ServerConfig()); }

  void StartServer(const clm::v1::ServerConfig& given) {
    Server::Options options;
    options.grpc_address = "127.0.0.1:0";
    options.metrics_address = "";
    options.data_dir = dir_.path();
    absl::StatusOr<clm::v1::ServerConfig> config = config::ResolveServerConfig(given);
    ASSERT_TRUE(config.ok()) << config.status();
    options.config = *config;
    options.shutdown_grace = absl::Seconds(2);
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = clm::v1::TradeIngest::NewStub(channel_);
  }

  void StopServer() {
    stub_.reset();
    channel_.reset();
    server_.reset();
  }

  // Reads what is stored, after the server has stopped.
  std::vector<Trade> StoredTrades() {
    auto store = store::SqliteTradeStore::Open(dir_.path() + "/clm.db");
    EXPECT_TRUE(store.ok()) << store.status();
    auto trades = (*store)->LoadTrades({});
    EXPECT_TRUE(trades.ok()) << trades.status();
    return *trades;
  }

  grpc::Status Record(const std::vector<TradeOutcome>& trades, IngestAck* ack, uint64_t batch_id = 1) {
    clm::v1::RecordRequest request;
    request.set_batch_id(batch_id);
    for (const auto& t : trades) *request.add_trades() = t;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub_->Record(&context, request, ack);
  }

  clm::v1::DatasetSummary Summary() {
    grpc::ClientContext context;
    clm::v1::GetDatasetSummaryRequest request;
    clm::v1::DatasetSummary summary;
    grpc::Status status = stub_->GetDatasetSummary(&context, request, &summary);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return summary;
  }

  clm::testing::TempDir dir_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<clm::v1::TradeIngest::Stub> stub_;
};

IngestRequest Batch(uint64_t batch_id, int trades, const std::string& prefix) {
  IngestRequest request;
  request.set_batch_id(batch_id);
  for (int i = 0; i < trades; ++i) {
    *request.add_trades() = MakeTrade(absl::StrCat(prefix, "-", batch_id, "-", i), 0.5 + 0.001 * i,
                                      i % 3 == 0 ? TradeOutcome::LOSS : TradeOutcome::WIN);
  }
  return request;
}

TEST_F(TradeIngestServiceTest, LongStreamIsAcknowledgedInOrderAndStored) {
  constexpr int kBatches = 300;
  constexpr int kPerBatch = 40;
  grpc::ClientContext context;
  auto stream = stub_->Ingest(&context);
  std::thread writer([&] {
    for (int b = 1; b <= kBatches; ++b) ASSERT_TRUE(stream->Write(Batch(b, kPerBatch, "long")));
    stream->WritesDone();
  });
  IngestAck ack;
  uint64_t expected = 1;
  while (stream->Read(&ack)) {
    EXPECT_EQ(ack.batch_id(), expected);
    EXPECT_EQ(ack.accepted(), kPerBatch);
    EXPECT_EQ(ack.duplicates(), 0u);
    EXPECT_EQ(ack.rejected_size(), 0);
    ++expected;
  }
  writer.join();
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(expected, kBatches + 1u);
  EXPECT_EQ(Summary().total(), static_cast<uint64_t>(kBatches * kPerBatch));
}

TEST_F(TradeIngestServiceTest, ResentTradesAreDuplicatesAndStoredOnce) {
  std::vector<TradeOutcome> trades = {MakeTrade("a"), MakeTrade("b"), MakeTrade("c")};
  IngestAck ack;
  ASSERT_TRUE(Record(trades, &ack).ok());
  EXPECT_EQ(ack.accepted(), 3u);
  ASSERT_TRUE(Record(trades, &ack).ok());
  EXPECT_EQ(ack.accepted(), 0u);
  EXPECT_EQ(ack.duplicates(), 3u);
  EXPECT_EQ(ack.rejected_size(), 0);
  EXPECT_EQ(Summary().total(), 3u);
}

TEST_F(TradeIngestServiceTest, ConflictingContentIsRejectedAndStoredTradeKept) {
  TradeOutcome original = MakeTrade("x", 0.70, TradeOutcome::WIN);
  IngestAck ack;
  ASSERT_TRUE(Record({original}, &ack).ok());
  TradeOutcome changed = original;
  changed.set_outcome(TradeOutcome::LOSS);
  ASSERT_TRUE(Record({MakeTrade("y"), changed}, &ack, 7).ok());
  EXPECT_EQ(ack.batch_id(), 7u);
  EXPECT_EQ(ack.accepted(), 1u);
  ASSERT_EQ(ack.rejected_size(), 1);
  EXPECT_EQ(ack.rejected(0).index(), 1u);
  EXPECT_EQ(ack.rejected(0).trade_id(), "x");
  EXPECT_EQ(ack.rejected(0).field(), "trade_id");
  EXPECT_NE(ack.rejected(0).reason().find("conflict"), std::string::npos);

  grpc::ClientContext context;
  clm::v1::ListDeadLettersResponse dead;
  ASSERT_TRUE(stub_->ListDeadLetters(&context, clm::v1::ListDeadLettersRequest(), &dead).ok());
  ASSERT_EQ(dead.entries_size(), 1);
  EXPECT_EQ(dead.entries(0).trade().outcome(), TradeOutcome::LOSS);  // the payload as received
  EXPECT_EQ(dead.entries(0).batch_id(), 7u);

  StopServer();
  std::vector<Trade> stored = StoredTrades();
  ASSERT_EQ(stored.size(), 2u);
  for (const Trade& t : stored) {
    if (t.trade_id == "x") {
      EXPECT_EQ(t.outcome, Outcome::kWin);  // untouched
    }
  }
}

TEST_F(TradeIngestServiceTest, InvalidTradesAreRejectedByFieldAndDeadLettered) {
  TradeOutcome bad = MakeTrade("bad");
  bad.set_confidence(1.7);
  TradeOutcome no_close = MakeTrade("noclose");
  no_close.clear_closed_at();
  IngestAck ack;
  ASSERT_TRUE(Record({MakeTrade("ok1"), bad, MakeTrade("ok2"), no_close}, &ack).ok());
  EXPECT_EQ(ack.accepted(), 2u);
  ASSERT_EQ(ack.rejected_size(), 2);
  EXPECT_EQ(ack.rejected(0).index(), 1u);
  EXPECT_EQ(ack.rejected(0).field(), "confidence");
  EXPECT_EQ(ack.rejected(0).reason(), "must be within [0, 1], got 1.7");
  EXPECT_EQ(ack.rejected(1).index(), 3u);
  EXPECT_EQ(ack.rejected(1).field(), "closed_at");
  EXPECT_EQ(ack.rejected(1).reason(), "is required");

  grpc::ClientContext context;
  clm::v1::ListDeadLettersRequest request;
  request.set_limit(1);
  clm::v1::ListDeadLettersResponse page;
  ASSERT_TRUE(stub_->ListDeadLetters(&context, request, &page).ok());
  ASSERT_EQ(page.entries_size(), 1);
  EXPECT_EQ(page.entries(0).trade_id(), "noclose");  // newest first
  EXPECT_NE(page.next_before_id(), 0u);
  grpc::ClientContext context2;
  request.set_before_id(page.next_before_id());
  ASSERT_TRUE(stub_->ListDeadLetters(&context2, request, &page).ok());
  ASSERT_EQ(page.entries_size(), 1);
  EXPECT_EQ(page.entries(0).trade_id(), "bad");
  EXPECT_DOUBLE_EQ(page.entries(0).trade().confidence(), 1.7);
  EXPECT_EQ(Summary().total(), 2u);
}

TEST_F(TradeIngestServiceTest, OversizedAndEmptyBatchesAreInvalidAndStoreNothing) {
  std::vector<TradeOutcome> trades;
  for (int i = 0; i < 1001; ++i) trades.push_back(MakeTrade(absl::StrCat("big-", i)));
  IngestAck ack;
  grpc::Status status = Record(trades, &ack);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "trades: a batch may hold at most 1000 trades, got 1001");
  status = Record({}, &ack);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "trades: a batch must hold at least one trade");

  // On a stream, the batch-level error ends the stream, after acknowledging what came before.
  grpc::ClientContext context;
  auto stream = stub_->Ingest(&context);
  ASSERT_TRUE(stream->Write(Batch(1, 10, "pre")));
  ASSERT_TRUE(stream->Read(&ack));
  EXPECT_EQ(ack.accepted(), 10u);
  IngestRequest big;
  big.set_batch_id(2);
  for (const auto& t : trades) *big.add_trades() = t;
  stream->Write(big);
  EXPECT_FALSE(stream->Read(&ack));
  status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "batch 2: trades: a batch may hold at most 1000 trades, got 1001");
  EXPECT_EQ(Summary().total(), 10u);
}

TEST_F(TradeIngestServiceTest, ClientCancelMidStreamLeavesServerHealthy) {
  for (int round = 0; round < 3; ++round) {
    grpc::ClientContext context;
    auto stream = stub_->Ingest(&context);
    for (int b = 1; b <= 20; ++b) ASSERT_TRUE(stream->Write(Batch(b, 20, absl::StrCat("cancel", round))));
    IngestAck ack;
    ASSERT_TRUE(stream->Read(&ack));
    context.TryCancel();
    while (stream->Read(&ack)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // Whatever was committed is whole; the server still takes new work.
  IngestAck ack;
  ASSERT_TRUE(Record({MakeTrade("after-cancel")}, &ack).ok());
  EXPECT_EQ(ack.accepted(), 1u);
  EXPECT_EQ(Summary().total() % 20, 1u);
}

TEST_F(TradeIngestServiceTest, ShutdownWithOpenStreamAcknowledgesAndKeepsEverything) {
  grpc::ClientContext context;
  auto stream = stub_->Ingest(&context);
  std::vector<uint64_t> acked;
  for (int b = 1; b <= 5; ++b) ASSERT_TRUE(stream->Write(Batch(b, 30, "shutdown")));
  IngestAck ack;
  for (int b = 1; b <= 5; ++b) {
    ASSERT_TRUE(stream->Read(&ack));
    acked.push_back(ack.batch_id());
  }
  // The stream stays open, as an engine's does; the server is asked to stop.
  const absl::Time start = absl::Now();
  std::thread stopper([&] { server_->Shutdown(); });
  EXPECT_FALSE(stream->Read(&ack));
  grpc::Status status = stream->Finish();
  stopper.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "shutdown waited for the grace period";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(acked.size(), 5u);
  StopServer();
  EXPECT_EQ(StoredTrades().size(), 150u);
}

TEST_F(TradeIngestServiceTest, StreamsBeyondTheLimitAreRefused) {
  StopServer();
  clm::v1::ServerConfig config;
  config.mutable_ingest()->set_max_ingest_streams(2);
  StartServer(config);
  grpc::ClientContext c1, c2, c3;
  auto s1 = stub_->Ingest(&c1);
  auto s2 = stub_->Ingest(&c2);
  IngestAck ack;
  ASSERT_TRUE(s1->Write(Batch(1, 1, "s1")));
  ASSERT_TRUE(s1->Read(&ack));
  ASSERT_TRUE(s2->Write(Batch(1, 1, "s2")));
  ASSERT_TRUE(s2->Read(&ack));
  auto s3 = stub_->Ingest(&c3);
  s3->Write(Batch(1, 1, "s3"));
  EXPECT_FALSE(s3->Read(&ack));
  grpc::Status status = s3->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("max_ingest_streams=2"), std::string::npos);
  // Closing one makes room again.
  s1->WritesDone();
  EXPECT_FALSE(s1->Read(&ack));
  EXPECT_TRUE(s1->Finish().ok());
  grpc::ClientContext c4;
  auto s4 = stub_->Ingest(&c4);
  ASSERT_TRUE(s4->Write(Batch(1, 1, "s4")));
  EXPECT_TRUE(s4->Read(&ack));
  s4->WritesDone();
  s2->WritesDone();
  while (s4->Read(&ack)) {
  }
  while (s2->Read(&ack)) {
  }
  EXPECT_TRUE(s4->Finish().ok());
  EXPECT_TRUE(s2->Finish().ok());
}

TEST_F(TradeIngestServiceTest, StreamsStoppedByTheByteBudgetResumeAndLoseNothing) {
  // A budget far below what the streams send at once (6 streams x 16 batches x ~35 KB): streams park on
  // it again and again; every one must be resumed by a later commit, or its acks never come.
  StopServer();
  clm::v1::ServerConfig config;
  config.mutable_ingest()->set_max_inflight_bytes(1 << 20);
  StartServer(config);
  constexpr int kStreams = 6, kBatches = 12, kTrades = 500;
  std::vector<std::thread> engines;
  std::vector<int> acked(kStreams, 0);
  std::vector<grpc::Status> statuses(kStreams);
  for (int s = 0; s < kStreams; ++s) {
    engines.emplace_back([&, s] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      auto stream = stub_->Ingest(&context);
      std::thread reader([&] {
        IngestAck ack;
        while (stream->Read(&ack)) {
          if (ack.accepted() == static_cast<uint32_t>(kTrades)) ++acked[s];
        }
      });
      for (int b = 1; b <= kBatches; ++b) {
        if (!stream->Write(Batch(b, kTrades, absl::StrCat("budget", s, "-", b)))) break;
      }
      stream->WritesDone();
      reader.join();
      statuses[s] = stream->Finish();
    });
  }
  for (std::thread& t : engines) t.join();
  for (int s = 0; s < kStreams; ++s) {
    EXPECT_TRUE(statuses[s].ok()) << "stream " << s << ": " << statuses[s].error_message();
    EXPECT_EQ(acked[s], kBatches) << "stream " << s;
  }
  EXPECT_EQ(Summary().total(), static_cast<uint64_t>(kStreams * kBatches * kTrades));
}

TEST_F(TradeIngestServiceTest, DatasetSummaryCountsAndFilters) {
  IngestAck ack;
  ASSERT_TRUE(Record({MakeTrade("w1", 0.6, TradeOutcome::WIN, absl::Hours(72), "BTCUSDT"),
                      MakeTrade("l1", 0.6, TradeOutcome::LOSS, absl::Hours(48), "ETHUSDT"),
                      MakeTrade("n1", 0.6, TradeOutcome::NEUTRAL, absl::Hours(24), "BTCUSDT")},
                     &ack)
                  .ok());
  clm::v1::DatasetSummary all = Summary();
  EXPECT_EQ(all.total(), 3u);
  EXPECT_EQ(all.wins(), 1u);
  EXPECT_EQ(all.losses(), 1u);
  EXPECT_EQ(all.neutrals(), 1u);
  EXPECT_NEAR(all.span_days(), 2.0, 1e-3);
  EXPECT_EQ(all.trades_per_symbol().at("BTCUSDT"), 2u);
  EXPECT_EQ(all.trades_per_model().at("ensemble_v1"), 3u);

  grpc::ClientContext context;
  clm::v1::GetDatasetSummaryRequest request;
  request.mutable_filter()->set_symbol("BTCUSDT");
  clm::v1::DatasetSummary btc;
  ASSERT_TRUE(stub_->GetDatasetSummary(&context, request, &btc).ok());
  EXPECT_EQ(btc.total(), 2u);
  EXPECT_EQ(btc.losses(), 0u);

  grpc::ClientContext bad_context;
  request.mutable_filter()->mutable_closed_from()->set_seconds(2000000000);
  request.mutable_filter()->mutable_closed_to()->set_seconds(1000000000);
  grpc::Status status = stub_->GetDatasetSummary(&bad_context, request, &btc);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "filter.closed_to: must be after filter.closed_from");
}

TEST_F(TradeIngestServiceTest, HealthReportsServing) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(health->Check(&context, request, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(TradeIngestServiceTest, SecondServerOnTheSameDataDirIsRefused) {
  Server::Options options;
  options.grpc_address = "127.0.0.1:0";
  options.metrics_address = "";
  options.data_dir = dir_.path();
  options.config = *config::ResolveServerConfig({});
  absl::StatusOr<std::unique_ptr<Server>> second = Server::Start(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another clm-server"), std::string::npos);
}

}  // namespace
}  // namespace clm::server
