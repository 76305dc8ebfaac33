#ifndef CLM_LIB_INGEST_INGEST_PIPELINE_H_
#define CLM_LIB_INGEST_INGEST_PIPELINE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clm/v1/ingest.pb.h"
#include "lib/store/trade_store.h"

namespace clm::ingest {

// What one group commit did, for metrics and for whoever reacts to new data (the cadence monitor).
struct CommitStats {
  absl::Duration latency;     // time inside the store's transaction, fsync included
  size_t batches = 0;
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  // Rejections by reason class: the field that failed validation, or "conflict".
  std::vector<std::pair<std::string, uint64_t>> rejected_by_reason;
  bool ok = true;             // false when the transaction failed and nothing was stored
  // The trades this group newly stored (not duplicates), in commit order. They point into the group's
  // batches and are valid only during OnCommit: copy what you keep.
  std::vector<const clm::v1::TradeOutcome*> accepted_trades;
};

class IngestObserver {
 public:
  virtual ~IngestObserver() = default;
  // Runs on the writer thread after each group, before the batches' callbacks. Must be quick.
  virtual void OnCommit(const CommitStats& stats) = 0;
};

// Validates batches on the caller's thread and hands them to one writer thread that commits them in groups
// (one transaction and one fsync for many batches), then answers each batch.
//
// Contract:
// - `done` is called exactly once per accepted Submit, on the writer thread, in submission order, after the
//   batch's transaction committed (with the ack) or failed (with an error; then nothing of it was stored).
//   A failed group fails every batch in it, with the store's code (RESOURCE_EXHAUSTED when the disk is full,
//   UNAVAILABLE for I/O errors and busy timeouts). Batches queued behind it go into the next groups, which
//   fail the same way while the fault lasts and commit once it is gone: the writer never stops.
// - Submit never blocks on storage. Callers bound their own in-flight batches for backpressure.
// - After Stop() returns, every submitted batch has been answered.
class IngestPipeline final {
 public:
  struct Options {
    uint32_t max_batch_trades = 1000;                   // larger batches are refused whole
    absl::Duration future_tolerance = absl::Minutes(5);  // allowed clock skew for closed_at
    size_t max_group_trades = 20000;                    // trades committed in one transaction at most
  };
  using Done = std::function<void(absl::StatusOr<clm::v1::IngestAck>)>;

  IngestPipeline(store::TradeStore* store, const Options& options, IngestObserver* observer);
  ~IngestPipeline();
  IngestPipeline(const IngestPipeline&) = delete;
  IngestPipeline& operator=(const IngestPipeline&) = delete;

  // Takes the trades out of `trades`. Batch-level problems (empty, too many trades, shutting down) return an
  // error at once and `done` is not called; per-trade problems are reported in the ack.
  absl::Status Submit(uint64_t batch_id, google::protobuf::RepeatedPtrField<clm::v1::TradeOutcome>* trades,
                      Done done);

  // Stops accepting, commits everything queued, answers it, and joins the writer.
  void Stop();

  size_t QueuedTrades() const;

 private:
  struct Item {
    store::PendingBatch batch;
    Done done;
  };

  void WriterLoop();
  void CommitGroup(std::vector<Item>& group);

  store::TradeStore* const store_;
  const Options options_;
  IngestObserver* const observer_;

  mutable absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_trades_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace clm::ingest

#endif  // CLM_LIB_INGEST_INGEST_PIPELINE_H_
