// TradeStreamer against the real server in-process: batching and Flush, the bounded buffer, rejected trades,
// a server restart on the same port, and resends after a stream failure counted as duplicates.
#include "client/lib/trade_streamer.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/lib/connection.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "lib/config/config.h"
#include "server/server.h"
#include "tests/testing/test_util.h"

namespace clm::client {
namespace {

using clm::testing::MakeTrade;
using clm::v1::TradeOutcome;

std::unique_ptr<server::Server> StartServer(const std::string& data_dir, const std::string& address) {
  server::Server::Options options;
  options.grpc_address = address;
  options.metrics_address = "";
  options.data_dir = data_dir;
  absl::StatusOr<clm::v1::ServerConfig> config = config::ResolveServerConfig(clm::v1::ServerConfig());
  EXPECT_TRUE(config.ok()) << config.status();
  options.config = *config;
  options.shutdown_grace = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<server::Server>> server = server::Server::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

std::shared_ptr<grpc::Channel> Channel(const std::string& target) {
  ConnectionOptions connection;
  connection.target = target;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeChannel(connection, EngineChannelArguments(absl::Milliseconds(500)));
  EXPECT_TRUE(channel.ok()) << channel.status();
  return *channel;
}

uint64_t StoredTotal(const std::string& target) {
  auto stub = clm::v1::TradeIngest::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  clm::v1::DatasetSummary summary;
  grpc::Status status = stub->GetDatasetSummary(&context, clm::v1::GetDatasetSummaryRequest(), &summary);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return summary.total();
}

TradeOutcome Trade(const std::string& run, int i) {
  return MakeTrade(absl::StrCat(run, "-", i), 0.4 + (i % 50) / 100.0,
                   i % 3 == 0 ? TradeOutcome::LOSS : TradeOutcome::WIN, absl::Hours(1) + absl::Seconds(i));
}

TEST(TradeStreamerTest, DeliversManyBatchesAndFlushWaitsForEveryAck) {
  clm::testing::TempDir dir;
  auto server = StartServer(dir.path(), "127.0.0.1:0");
  ASSERT_NE(server, nullptr);
  const std::string target = absl::StrCat("127.0.0.1:", server->grpc_port());
  TradeStreamer::Options options;
  options.max_batch_trades = 100;
  options.max_linger = absl::Milliseconds(5);
  TradeStreamer streamer(Channel(target), options);
  constexpr int kTrades = 1234;
  for (int i = 0; i < kTrades; ++i) ASSERT_TRUE(streamer.Enqueue(Trade("many", i)).ok());
  ASSERT_TRUE(streamer.Flush(absl::Now() + absl::Seconds(30)).ok());
  TradeStreamer::Stats stats = streamer.stats();
  EXPECT_EQ(stats.enqueued, kTrades);
  EXPECT_EQ(stats.accepted, kTrades);
  EXPECT_EQ(stats.duplicates, 0u);
  EXPECT_EQ(stats.rejected, 0u);
  EXPECT_EQ(stats.buffered, 0u);
  EXPECT_GE(stats.batches_sent, 13u);  // ceil(1234 / 100)
  EXPECT_EQ(stats.batches_acked, stats.batches_sent);
  EXPECT_EQ(stats.reconnects, 0u);
  EXPECT_EQ(StoredTotal(target), kTrades);

  // A partial batch goes out after the linger, without a Flush.
  ASSERT_TRUE(streamer.Enqueue(Trade("linger", 0)).ok());
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (streamer.stats().accepted < kTrades + 1 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(streamer.stats().accepted, kTrades + 1);
  EXPECT_TRUE(streamer.Close().ok());
  EXPECT_EQ(streamer.Enqueue(Trade("late", 0)).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(TradeStreamerTest, BoundedBufferRefusesWhenFull) {
  // Nothing listens here: nothing is ever acknowledged.
  TradeStreamer::Options options;
  options.max_buffered_trades = 10;
  TradeStreamer streamer(Channel(absl::StrCat("127.0.0.1:", clm::testing::PickFreePort())), options);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(streamer.Enqueue(Trade("full", i)).ok()) << i;
  absl::Status refused = streamer.Enqueue(Trade("full", 10));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_EQ(streamer.stats().refused, 1u);
  EXPECT_EQ(streamer.stats().buffered, 10u);
  absl::Status flushed = streamer.Flush(absl::Now() + absl::Milliseconds(300));
  EXPECT_EQ(flushed.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(flushed.message().find("10 trades not yet acknowledged"), std::string::npos) << flushed;
  EXPECT_EQ(streamer.Close(absl::Milliseconds(10)).code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(TradeStreamerTest, RejectedTradesAreReportedThroughTheCallback) {
  clm::testing::TempDir dir;
  auto server = StartServer(dir.path(), "127.0.0.1:0");
  ASSERT_NE(server, nullptr);
  absl::Mutex mu;
  std::vector<std::pair<clm::v1::RejectedTrade, TradeOutcome>> rejected;
  TradeStreamer::Options options;
  options.on_rejected = [&](const clm::v1::RejectedTrade& r, const TradeOutcome& t) {
    absl::MutexLock lock(&mu);
    rejected.emplace_back(r, t);
  };
  TradeStreamer streamer(Channel(absl::StrCat("127.0.0.1:", server->grpc_port())), options);
  ASSERT_TRUE(streamer.Enqueue(Trade("rej", 0)).ok());
  TradeOutcome bad = Trade("rej", 1);
  bad.set_confidence(1.7);
  ASSERT_TRUE(streamer.Enqueue(bad).ok());
  ASSERT_TRUE(streamer.Enqueue(Trade("rej", 2)).ok());
  ASSERT_TRUE(streamer.Flush(absl::Now() + absl::Seconds(10)).ok());
  EXPECT_EQ(streamer.stats().accepted, 2u);
  EXPECT_EQ(streamer.stats().rejected, 1u);
  absl::MutexLock lock(&mu);
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].first.trade_id(), "rej-1");
  EXPECT_EQ(rejected[0].first.index(), 1u);
  EXPECT_EQ(rejected[0].first.field(), "confidence");
  EXPECT_NE(rejected[0].first.reason().find("1.7"), std::string::npos) << rejected[0].first.reason();
  EXPECT_EQ(rejected[0].second.trade_id(), "rej-1");  // the trade as sent
}

TEST(TradeStreamerTest, ServerRestartOnTheSamePortLosesNothingAndStoresEachTradeOnce) {
  clm::testing::TempDir dir;
  const int port = clm::testing::PickFreePort();
  const std::string target = absl::StrCat("127.0.0.1:", port);
  auto server = StartServer(dir.path(), target);
  ASSERT_NE(server, nullptr);
  TradeStreamer::Options options;
  options.max_batch_trades = 50;
  options.max_linger = absl::Milliseconds(2);
  options.initial_backoff = absl::Milliseconds(20);
  options.max_backoff = absl::Milliseconds(200);
  TradeStreamer streamer(Channel(target), options);

  // The engine keeps producing while the server goes down and comes back.
  constexpr int kTrades = 3000;
  std::atomic<int> produced{0};
  std::thread producer([&] {
    for (int i = 0; i < kTrades; ++i) {
      while (!streamer.Enqueue(Trade("restart", i)).ok()) absl::SleepFor(absl::Milliseconds(1));
      produced.store(i + 1);
      if (i % 20 == 0) absl::SleepFor(absl::Milliseconds(1));
    }
  });
  while (produced.load() < kTrades / 3) absl::SleepFor(absl::Milliseconds(1));
  server->Shutdown();
  server.reset();
  absl::SleepFor(absl::Milliseconds(300));  // the streamer fails to reconnect for a while
  server = StartServer(dir.path(), target);
  ASSERT_NE(server, nullptr);
  producer.join();
  ASSERT_TRUE(streamer.Flush(absl::Now() + absl::Seconds(60)).ok()) << streamer.stats().last_error;

  TradeStreamer::Stats stats = streamer.stats();
  EXPECT_GE(stats.reconnects, 1u);
  EXPECT_GE(stats.stream_failures, 1u);
  EXPECT_EQ(stats.rejected, 0u);
  // Every trade acknowledged; a resent trade the first server had stored counts as a duplicate.
  EXPECT_GE(stats.accepted + stats.duplicates, static_cast<uint64_t>(kTrades));
  EXPECT_LE(stats.duplicates, stats.resent_trades);
  EXPECT_EQ(StoredTotal(target), static_cast<uint64_t>(kTrades));
}

// A TradeIngest that forwards every batch to the real server. On its first stream it never acknowledges and
// fails the stream after `drop_after` batches, as a connection that breaks after the server committed but
// before the acks arrived; on later streams it relays the real acks.
class FlakyProxy final : public clm::v1::TradeIngest::Service {
 public:
  FlakyProxy(const std::string& upstream, int drop_after)
      : upstream_(clm::v1::TradeIngest::NewStub(grpc::CreateChannel(upstream, grpc::InsecureChannelCredentials()))),
        drop_after_(drop_after) {}

  grpc::Status Ingest(grpc::ServerContext* context,
                      grpc::ServerReaderWriter<clm::v1::IngestAck, clm::v1::IngestRequest>* stream) override {
    const bool first = streams_.fetch_add(1) == 0;
    clm::v1::IngestRequest request;
    int forwarded = 0;
    while (stream->Read(&request)) {
      clm::v1::RecordRequest record;
      record.set_batch_id(request.batch_id());
      *record.mutable_trades() = request.trades();
      clm::v1::IngestAck ack;
      grpc::ClientContext upstream_context;
      grpc::Status status = upstream_->Record(&upstream_context, record, &ack);
      if (!status.ok()) return status;
      if (first) {
        if (++forwarded == drop_after_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection lost");
        continue;
      }
      stream->Write(ack);
    }
    return grpc::Status::OK;
  }

 private:
  std::unique_ptr<clm::v1::TradeIngest::Stub> upstream_;
  const int drop_after_;
  std::atomic<int> streams_{0};
};

TEST(TradeStreamerTest, UnacknowledgedBatchesAreResentAndCountedAsDuplicates) {
  clm::testing::TempDir dir;
  auto server = StartServer(dir.path(), "127.0.0.1:0");
  ASSERT_NE(server, nullptr);
  const std::string upstream = absl::StrCat("127.0.0.1:", server->grpc_port());
  FlakyProxy proxy(upstream, /*drop_after=*/3);
  grpc::ServerBuilder builder;
  int proxy_port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &proxy_port);
  builder.RegisterService(&proxy);
  std::unique_ptr<grpc::Server> proxy_server = builder.BuildAndStart();
  ASSERT_NE(proxy_server, nullptr);

  TradeStreamer::Options options;
  options.max_batch_trades = 100;
  options.initial_backoff = absl::Milliseconds(20);
  // Only full batches leave before Flush, however slowly the trades are enqueued (a sanitizer build is many
  // times slower than the 50 ms default linger): five batches of 100, whose first three the proxy drops.
  options.max_linger = absl::Hours(1);
  // Build every batch before the stream opens, so all five go out on the first stream.
  TradeStreamer streamer(Channel(absl::StrCat("127.0.0.1:", proxy_port)), options);
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(streamer.Enqueue(Trade("resend", i)).ok());
  ASSERT_TRUE(streamer.Flush(absl::Now() + absl::Seconds(30)).ok()) << streamer.stats().last_error;

  TradeStreamer::Stats stats = streamer.stats();
  EXPECT_EQ(stats.reconnects, 1u);
  EXPECT_EQ(stats.stream_failures, 1u);
  EXPECT_EQ(stats.last_error, "UNAVAILABLE: connection lost");
  EXPECT_GE(stats.resent_batches, 3u);
  // The three batches the server stored without the engine hearing back are duplicates the second time.
  EXPECT_EQ(stats.duplicates, 300u);
  EXPECT_EQ(stats.accepted, 200u);
  EXPECT_EQ(StoredTotal(upstream), 500u);
  // A sync server waits for open handlers: end the stream first.
  EXPECT_TRUE(streamer.Close().ok());
  proxy_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace
}  // namespace clm::client
