#ifndef CLM_LIB_STORE_SQLITE_TRADE_STORE_H_
#define CLM_LIB_STORE_SQLITE_TRADE_STORE_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "lib/store/sqlite.h"
#include "lib/store/trade_store.h"

namespace clm::store {

// TradeStore on an embedded SQLite database (WAL, synchronous=FULL). Writes go through one connection
// under a mutex (callers are expected to funnel them through one writer that groups batches); reads use a
// small pool of their own connections, so queries never wait for a commit's fsync. Checkpoints run on a
// background thread of their own, not inside the writer's COMMIT, so ingest latency does not carry them.
class SqliteTradeStore final : public TradeStore {
 public:
  ~SqliteTradeStore() override;
  // Opens or creates `path` and migrates it to the latest schema.
  static absl::StatusOr<std::unique_ptr<SqliteTradeStore>> Open(const std::string& path,
                                                                const StoreOptions& options = {});

  absl::StatusOr<std::vector<BatchResult>> WriteBatches(absl::Span<PendingBatch* const> batches,
                                                        int64_t now_ns) override;
  absl::StatusOr<clm::v1::DatasetSummary> Summarize(const DatasetQuery& query) override;
  absl::StatusOr<std::vector<Trade>> LoadTrades(const DatasetQuery& query) override;
  absl::StatusOr<int64_t> MaxSeq() override;
  absl::StatusOr<clm::v1::ListDeadLettersResponse> ListDeadLetters(uint32_t limit, uint64_t before_id) override;
  int64_t SizeBytes() const override;

 private:
  struct WriterStatements {
    Statement insert_trade;
    Statement find_hash;
    Statement insert_dead_letter;
  };
  class ReaderLease;

  SqliteTradeStore(std::string path, StoreOptions options, std::unique_ptr<Database> writer, WriterStatements statements,
                   std::unique_ptr<Database> checkpointer);
  void CheckpointLoop();

  absl::StatusOr<std::unique_ptr<Database>> AcquireReader();
  void ReleaseReader(std::unique_ptr<Database> db);
  absl::Status WriteBatch(PendingBatch& batch, int64_t now_ns, BatchResult& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status InsertDeadLetter(const Rejection& rejection, uint64_t batch_id, int64_t now_ns)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  const std::string path_;
  const StoreOptions options_;
  absl::Mutex write_mu_;
  std::unique_ptr<Database> writer_ ABSL_GUARDED_BY(write_mu_);
  WriterStatements stmts_ ABSL_GUARDED_BY(write_mu_);
  absl::Mutex readers_mu_;
  std::vector<std::unique_ptr<Database>> idle_readers_ ABSL_GUARDED_BY(readers_mu_);

  std::unique_ptr<Database> checkpointer_;  // used by the checkpoint thread only
  absl::Mutex checkpoint_mu_;
  bool stop_checkpoints_ ABSL_GUARDED_BY(checkpoint_mu_) = false;
  std::thread checkpoint_thread_;
};

// Canonical timestamp conversion shared by every SQLite table: nanoseconds since the Unix epoch.
int64_t ToNanos(const google::protobuf::Timestamp& ts);
google::protobuf::Timestamp FromNanos(int64_t ns);

}  // namespace clm::store

#endif  // CLM_LIB_STORE_SQLITE_TRADE_STORE_H_
