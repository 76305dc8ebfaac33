#ifndef CLM_LIB_STORE_TRADE_STORE_H_
#define CLM_LIB_STORE_TRADE_STORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "clm/v1/ingest.pb.h"
#include "clm/v1/trade.pb.h"
#include "lib/trade/trade.h"

namespace clm::store {

// A trade the store will not keep, with the field and the reason; it goes to the dead-letter table.
struct Rejection {
  uint32_t index = 0;     // position in its batch
  std::string trade_id;
  std::string field;      // the field that failed, or "trade_id" for a conflict
  std::string reason;
  std::string payload;    // the trade as received, serialized clm.v1.TradeOutcome
};

// One ingest batch after validation. `trades`, `indices` and `content_hashes` are parallel.
struct PendingBatch {
  uint64_t batch_id = 0;
  std::vector<clm::v1::TradeOutcome> trades;   // trades that passed validation
  std::vector<uint32_t> indices;               // their positions in the batch as sent
  std::vector<uint64_t> content_hashes;        // fingerprint of each trade's canonical content
  std::vector<Rejection> rejected;             // trades that failed validation
};

// What the store did with one batch.
struct BatchResult {
  uint32_t accepted = 0;      // newly stored
  std::vector<uint32_t> accepted_positions;  // which of PendingBatch::trades were newly stored
  uint32_t duplicates = 0;    // same trade_id with the same content already stored
  std::vector<Rejection> conflicts;  // same trade_id with different content: not stored, dead-lettered
};

struct DatasetQuery {
  std::string symbol;                  // empty: any
  std::string model_id;                // empty: any
  std::optional<int64_t> closed_from_ns;  // inclusive
  std::optional<int64_t> closed_to_ns;    // exclusive
  int64_t after_seq = 0;               // only trades stored after this sequence number
  // When set, polled while a long read runs; once it returns true the read stops and fails with CANCELLED
  // (a caller whose deadline passed or who went away). Called on the reading thread.
  std::function<bool()> stop;
};

// Durable storage of trades. Implementations: SQLite (embedded, one process). A PostgreSQL backend for
// several replicas implements the same contract.
//
// Contract:
// - WriteBatches is all-or-nothing: when it returns OK every accepted trade and every dead letter of every
//   batch is durable (committed, fsynced); when it returns an error nothing of the group was stored.
// - A trade_id is stored at most once, whatever the number of writers or retries.
// - All methods are thread-safe. Reads see every write whose WriteBatches has returned.
class TradeStore {
 public:
  virtual ~TradeStore() = default;

  // Stores a group of batches in one transaction (group commit). Results are parallel to `batches`.
  virtual absl::StatusOr<std::vector<BatchResult>> WriteBatches(absl::Span<PendingBatch* const> batches,
                                                                int64_t now_ns) = 0;

  virtual absl::StatusOr<clm::v1::DatasetSummary> Summarize(const DatasetQuery& query) = 0;

  // Trades matching the query, ordered by close time then ingest order.
  virtual absl::StatusOr<std::vector<Trade>> LoadTrades(const DatasetQuery& query) = 0;

  // Highest sequence number stored so far (0 when empty).
  virtual absl::StatusOr<int64_t> MaxSeq() = 0;

  // Newest first; `before_id` 0 starts at the newest.
  virtual absl::StatusOr<clm::v1::ListDeadLettersResponse> ListDeadLetters(uint32_t limit,
                                                                            uint64_t before_id) = 0;

  // Bytes the store occupies on disk (database and log).
  virtual int64_t SizeBytes() const = 0;
};

}  // namespace clm::store

#endif  // CLM_LIB_STORE_TRADE_STORE_H_
