// clm-sqlite-ceiling: the storage ceiling for ingest. Inserts the same kind of trades clm-load sends straight
// into SQLite, through the server's own Database::Open and Migrate (same schema, WAL, synchronous=FULL) and
// the same INSERT, committing every --group trades. No gRPC, no validation: what is left is the cost the
// server cannot avoid, so clm-load's trades_per_second divided by this one is the server's efficiency.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "bench/ingest/trade_gen.h"
#include "clm/v1/trade.pb.h"
#include "lib/ingest/validation.h"
#include "lib/store/migrations.h"
#include "lib/store/sqlite.h"
#include "lib/store/sqlite_trade_store.h"

ABSL_FLAG(std::string, db, "", "Database file to create; removed first (with its -wal and -shm), and kept after");
ABSL_FLAG(uint64_t, trades, 100000, "Trades to insert");
ABSL_FLAG(uint32_t, batch, 1000,
          "Trades per client batch. A transaction holds whole batches, as the server's group commit does");
ABSL_FLAG(uint64_t, group, 20000,
          "Trades per transaction at most: the server's default max_group_trades. The server only reaches it "
          "when that many trades are queued; one stream queues at most --inflight batches");
ABSL_FLAG(std::string, symbols, "BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT,XRPUSDT,ADAUSDT,DOGEUSDT,AVAXUSDT",
          "Comma-separated symbols to draw trades from");
ABSL_FLAG(uint64_t, seed, 1, "Random seed for the generated trades");
ABSL_FLAG(std::string, closed_at_order, "random",
          "random: closed_at uniform over the past 3 days (a backfill; the worst case for the time indexes); "
          "ascending: closed_at rising with the trade number, as a live engine reports trades");
// Left at their defaults these are the server's writer settings (lib/store/sqlite_trade_store.cc): a 64 MiB
// page cache and no checkpoint inside COMMIT. The server checkpoints on a thread of its own; the ceiling does
// not checkpoint at all, so it is an upper bound.
ABSL_FLAG(int64_t, cache_size_kib, 65536,
          "PRAGMA cache_size=-N (KiB of page cache); the server's writer uses 65536; 0 keeps SQLite's default");
ABSL_FLAG(int64_t, wal_autocheckpoint, 0,
          "PRAGMA wal_autocheckpoint=N (pages); the server's writer uses 0 (off); -1 keeps SQLite's default");

namespace {

using Clock = std::chrono::steady_clock;

// Copied verbatim from SqliteTradeStore::Open: the ceiling must pay for exactly what the server runs.
constexpr char kInsertTrade[] =
    "INSERT INTO trades(trade_id, content_hash, symbol, model_id, confidence, outcome, pnl, opened_at_ns, "
    "closed_at_ns, side, model_confidences, ingested_at_ns) VALUES(?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT(trade_id) DO NOTHING";

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Time this thread spent on a CPU and runnable but waiting for one (/proc/thread-self/schedstat, ns), and
// the bytes this process caused to be written to storage (/proc/self/io). Zeros where unavailable.
struct Usage {
  double cpu_seconds = 0;
  double run_queue_wait_seconds = 0;
  double write_bytes = 0;
};

Usage ReadUsage() {
  Usage usage;
  if (std::FILE* f = std::fopen("/proc/thread-self/schedstat", "r")) {
    unsigned long long cpu_ns = 0, delay_ns = 0;
    if (std::fscanf(f, "%llu %llu", &cpu_ns, &delay_ns) == 2) {
      usage.cpu_seconds = static_cast<double>(cpu_ns) / 1e9;
      usage.run_queue_wait_seconds = static_cast<double>(delay_ns) / 1e9;
    }
    std::fclose(f);
  }
  if (std::FILE* f = std::fopen("/proc/self/io", "r")) {
    char key[64];
    unsigned long long value = 0;
    while (std::fscanf(f, "%63s %llu", key, &value) == 2) {
      if (std::string(key) == "write_bytes:") usage.write_bytes = static_cast<double>(value);
    }
    std::fclose(f);
  }
  return usage;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "clm-sqlite-ceiling: %s\n", status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Inserts trades straight into SQLite with the server's schema and settings; prints the storage ceiling.\n"
      "Usage: clm-sqlite-ceiling --db /tmp/ceiling.db --trades 200000 --batch 1000 --group 20000");
  absl::ParseCommandLine(argc, argv);
  const std::string path = absl::GetFlag(FLAGS_db);
  const uint64_t total = absl::GetFlag(FLAGS_trades);
  const uint64_t batch = absl::GetFlag(FLAGS_batch);
  if (path.empty() || total == 0 || batch == 0 || absl::GetFlag(FLAGS_group) == 0) {
    std::fprintf(stderr, "clm-sqlite-ceiling: --db is required; --trades, --batch and --group must be positive\n");
    return 2;
  }
  // Whole batches per transaction, at least one, as IngestPipeline groups them.
  const uint64_t group = std::max<uint64_t>(1, absl::GetFlag(FLAGS_group) / batch) * batch;

  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ec;
    std::filesystem::remove(path + suffix, ec);
  }
  absl::StatusOr<std::unique_ptr<clm::store::Database>> db =
      clm::store::Database::Open(path, clm::store::Database::Options{});
  if (!db.ok()) return Fail(db.status());
  if (absl::Status status = clm::store::Migrate(**db); !status.ok()) return Fail(status);
  if (const int64_t kib = absl::GetFlag(FLAGS_cache_size_kib); kib > 0) {
    if (absl::Status status = (*db)->Exec(absl::StrCat("PRAGMA cache_size=-", kib)); !status.ok()) return Fail(status);
  }
  if (const int64_t pages = absl::GetFlag(FLAGS_wal_autocheckpoint); pages >= 0) {
    if (absl::Status status = (*db)->Exec(absl::StrCat("PRAGMA wal_autocheckpoint=", pages)); !status.ok()) {
      return Fail(status);
    }
  }
  absl::StatusOr<clm::store::Statement> insert = (*db)->Prepare(kInsertTrade);
  if (!insert.ok()) return Fail(insert.status());

  // Generated, canonicalized and fingerprinted before the clock starts: the server does that on the gRPC
  // threads, not in the writer.
  clm::bench::TradeGenerator::Options gen_options;
  gen_options.symbols = clm::bench::SplitList(absl::GetFlag(FLAGS_symbols));
  gen_options.seed = absl::GetFlag(FLAGS_seed);
  gen_options.total = total;
  if (absl::GetFlag(FLAGS_closed_at_order) == "ascending") {
    gen_options.ascending_close = true;
  } else if (absl::GetFlag(FLAGS_closed_at_order) != "random") {
    std::fprintf(stderr, "--closed_at_order: must be random or ascending, got %s\n",
                 absl::GetFlag(FLAGS_closed_at_order).c_str());
    return 2;
  }
  gen_options.id_prefix = "ceiling";
  clm::bench::TradeGenerator generator(gen_options);
  std::vector<clm::v1::TradeOutcome> trades(total);
  std::vector<uint64_t> hashes(total);
  for (uint64_t i = 0; i < total; ++i) {
    generator.Fill(i, &trades[i]);
    clm::ingest::Canonicalize(trades[i]);
    hashes[i] = clm::ingest::ContentHash(trades[i]);
  }

  // The timed part mirrors SqliteTradeStore::WriteBatches/WriteBatch: bind, step, check Changes, serialize
  // model_confidences per row, one transaction per group.
  std::vector<double> commit_ms;
  uint64_t inserted = 0;
  std::string model_confidences;
  const Usage usage_before = ReadUsage();
  const Clock::time_point start = Clock::now();
  for (uint64_t first = 0; first < total; first += group) {
    const uint64_t last = std::min(total, first + group);
    const int64_t now_ns = NowNs();
    absl::StatusOr<clm::store::Transaction> txn = clm::store::Transaction::Begin(**db);
    if (!txn.ok()) return Fail(txn.status());
    for (uint64_t i = first; i < last; ++i) {
      const clm::v1::TradeOutcome& t = trades[i];
      insert->Reset();
      insert->BindText(1, t.trade_id());
      insert->BindInt(2, static_cast<int64_t>(hashes[i]));
      insert->BindText(3, t.symbol());
      insert->BindText(4, t.model_id());
      insert->BindDouble(5, t.confidence());
      insert->BindInt(6, t.outcome());
      insert->BindDouble(7, t.pnl());
      if (t.has_opened_at()) {
        insert->BindInt(8, clm::store::ToNanos(t.opened_at()));
      } else {
        insert->BindNull(8);
      }
      insert->BindInt(9, clm::store::ToNanos(t.closed_at()));
      insert->BindInt(10, t.side());
      if (t.model_confidences().empty()) {
        insert->BindNull(11);
      } else {
        clm::v1::TradeOutcome only_models;
        *only_models.mutable_model_confidences() = t.model_confidences();
        model_confidences.clear();
        only_models.SerializeToString(&model_confidences);
        insert->BindBlob(11, model_confidences);
      }
      insert->BindInt(12, now_ns);
      if (absl::Status status = insert->Run(); !status.ok()) return Fail(status);
      inserted += static_cast<uint64_t>((*db)->Changes());
    }
    const Clock::time_point commit_start = Clock::now();
    if (absl::Status status = txn->Commit(); !status.ok()) return Fail(status);
    commit_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - commit_start).count());
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const Usage usage_after = ReadUsage();
  if (inserted != total) {
    std::fprintf(stderr, "clm-sqlite-ceiling: inserted %llu of %llu trades\n",
                 static_cast<unsigned long long>(inserted), static_cast<unsigned long long>(total));
    return 1;
  }
  double commit_total_ms = 0;
  for (double ms : commit_ms) commit_total_ms += ms;
  std::printf("db=%s\ntrades=%llu\nbatch=%llu\ngroup=%llu\ntransactions=%zu\n", path.c_str(),
              static_cast<unsigned long long>(total), static_cast<unsigned long long>(batch),
              static_cast<unsigned long long>(group), commit_ms.size());
  std::printf("seconds=%.3f\ntrades_per_second=%.0f\n", seconds, static_cast<double>(total) / seconds);
  // COMMIT alone (WAL append of the last pages and the fsync); the rest of each transaction is the inserts.
  std::printf("commit_ms_mean=%.2f\ncommit_share=%.3f\n", commit_total_ms / static_cast<double>(commit_ms.size()),
              commit_total_ms / 1000.0 / seconds);
  // Where the wall time went: on a CPU, waiting for one (other processes), or blocked (mostly I/O).
  const double cpu = usage_after.cpu_seconds - usage_before.cpu_seconds;
  const double run_queue = usage_after.run_queue_wait_seconds - usage_before.run_queue_wait_seconds;
  const double written = usage_after.write_bytes - usage_before.write_bytes;
  std::printf("cpu_seconds=%.2f\nrun_queue_wait_seconds=%.2f\nblocked_seconds=%.2f\n", cpu, run_queue,
              seconds - cpu - run_queue);
  std::printf("write_mib=%.1f\nwrite_bytes_per_trade=%.0f\n", written / 1048576.0, written / static_cast<double>(total));
  return 0;
}
