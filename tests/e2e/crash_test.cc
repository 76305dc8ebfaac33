// The durability promise, tested the hard way: engines stream into the real clm-server binary, the
// process is killed with SIGKILL at an arbitrary point, and after a restart every trade that was
// acknowledged is in the store, exactly once. CLM_CRASH_ITERATIONS sets the number of kill points
// (3 by default; the long run uses 50).
#include <signal.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lib/store/sqlite_trade_store.h"
#include "tests/testing/test_util.h"

namespace clm {
namespace {

using clm::v1::IngestAck;
using clm::v1::IngestRequest;

constexpr int kStreams = 3;
constexpr int kBatchSize = 50;

struct Ledger {
  absl::Mutex mu;
  std::vector<IngestRequest> acked_batches ABSL_GUARDED_BY(mu);
};

// Streams batches until the connection breaks; records each batch whose ack arrived.
void Engine(const std::string& address, const std::string& prefix, Ledger* ledger) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = clm::v1::TradeIngest::NewStub(channel);
  grpc::ClientContext context;
  auto stream = stub->Ingest(&context);
  absl::Mutex mu;
  std::map<uint64_t, IngestRequest> sent;
  std::thread reader([&] {
    IngestAck ack;
    while (stream->Read(&ack)) {
      IngestRequest batch;
      {
        absl::MutexLock lock(&mu);
        auto it = sent.find(ack.batch_id());
        if (it == sent.end()) continue;
        batch = std::move(it->second);
        sent.erase(it);
      }
      if (ack.accepted() + ack.duplicates() == static_cast<uint32_t>(batch.trades_size())) {
        absl::MutexLock lock(&ledger->mu);
        ledger->acked_batches.push_back(std::move(batch));
      }
    }
  });
  for (uint64_t b = 1;; ++b) {
    IngestRequest request;
    request.set_batch_id(b);
    for (int i = 0; i < kBatchSize; ++i) {
      *request.add_trades() = clm::testing::MakeTrade(absl::StrCat(prefix, "-", b, "-", i), 0.4 + 0.01 * (i % 50));
    }
    {
      absl::MutexLock lock(&mu);
      sent[b] = request;
    }
    if (!stream->Write(request)) break;
  }
  reader.join();
  stream->Finish();
}

std::unique_ptr<clm::testing::ServerProcess> StartServer(const std::string& data_dir, std::string* address) {
  auto server = std::make_unique<clm::testing::ServerProcess>(CLM_SERVER_BINARY, data_dir);
  *address = server->address();
  return server;
}

TEST(CrashTest, SigkillLosesNoAcknowledgedTradeAndCountsNoneTwice) {
  int iterations = 3;
  if (const char* env = std::getenv("CLM_CRASH_ITERATIONS")) iterations = std::max(1, std::atoi(env));
  clm::testing::TempDir dir;
  Ledger ledger;
  std::mt19937 rng(20261127);
  std::uniform_int_distribution<int> kill_after_ms(150, 900);

  for (int iteration = 0; iteration < iterations; ++iteration) {
    std::string address;
    auto server = StartServer(dir.path(), &address);
    ASSERT_TRUE(clm::testing::WaitForServing(address, absl::Seconds(20))) << "server did not come up";
    std::vector<std::thread> engines;
    for (int k = 0; k < kStreams; ++k) {
      engines.emplace_back(Engine, address, absl::StrCat("it", iteration, "-s", k), &ledger);
    }
    absl::SleepFor(absl::Milliseconds(kill_after_ms(rng)));
    server->Signal(SIGKILL);
    EXPECT_EQ(server->Wait(), 128 + SIGKILL);
    for (std::thread& t : engines) t.join();
  }

  absl::MutexLock lock(&ledger.mu);
  ASSERT_GT(ledger.acked_batches.size(), 0u) << "no batch was acknowledged before the kills";
  std::set<std::string> acked_ids;
  for (const IngestRequest& batch : ledger.acked_batches) {
    for (const auto& t : batch.trades()) acked_ids.insert(t.trade_id());
  }

  // Restart: resending every acknowledged batch must find each trade already stored, once.
  std::string address;
  auto server = StartServer(dir.path(), &address);
  ASSERT_TRUE(clm::testing::WaitForServing(address, absl::Seconds(20)));
  {
    auto stub = clm::v1::TradeIngest::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    for (const IngestRequest& batch : ledger.acked_batches) {
      clm::v1::RecordRequest request;
      request.set_batch_id(batch.batch_id());
      *request.mutable_trades() = batch.trades();
      grpc::ClientContext context;
      IngestAck ack;
      ASSERT_TRUE(stub->Record(&context, request, &ack).ok());
      ASSERT_EQ(ack.accepted(), 0u) << "an acknowledged trade of batch " << batch.batch_id() << " was lost";
      ASSERT_EQ(ack.duplicates(), static_cast<uint32_t>(kBatchSize));
    }
  }
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0) << "graceful shutdown after recovery failed";

  auto store = store::SqliteTradeStore::Open(dir.path() + "/clm.db");
  ASSERT_TRUE(store.ok()) << store.status();
  auto trades = (*store)->LoadTrades({});
  ASSERT_TRUE(trades.ok()) << trades.status();
  std::set<std::string> stored_ids;
  for (const Trade& t : *trades) EXPECT_TRUE(stored_ids.insert(t.trade_id).second) << "stored twice: " << t.trade_id;
  for (const std::string& id : acked_ids) ASSERT_TRUE(stored_ids.count(id)) << "lost: " << id;
  std::cout << "kill points: " << iterations << ", acknowledged trades: " << acked_ids.size()
            << ", stored trades: " << stored_ids.size() << "\n";
}

}  // namespace
}  // namespace clm
