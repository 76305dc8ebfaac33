#ifndef CLM_LIB_STORE_SQLITE_CADENCE_STORE_H_
#define CLM_LIB_STORE_SQLITE_CADENCE_STORE_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "lib/cadence/interfaces.h"
#include "lib/store/sqlite.h"

namespace clm::store {

// The cadence monitor's durable state in the tables cadence_mode_changes, cadence_decisions and
// cadence_state (schema v2), as serialized protos. The pending job lives under cadence_state key
// "pending_job". Decision ids are stored as the monitor gives them; appending an id that is already stored
// replaces that row (the monitor never reuses ids, so this only matters for a retried write).
//
// One connection of its own under a mutex: writes are rare (a mode change, a changed decision), and WAL
// lets them commit next to the ingest writer (each waits at most the busy timeout for the other's lock).
// Thread-safe; every call may block on I/O, as CadenceStateStore allows.
class SqliteCadenceStateStore final : public cadence::CadenceStateStore {
 public:
  // Opens `path` and migrates it to the latest schema (a no-op when the trade store already did).
  static absl::StatusOr<std::unique_ptr<SqliteCadenceStateStore>> Open(const std::string& path,
                                                                       const StoreOptions& options = {});

  absl::Status AppendModeChange(const clm::v1::ModeChange& change) override;
  absl::StatusOr<std::vector<clm::v1::ModeChange>> LoadModeChanges(size_t limit) override;
  absl::Status AppendDecision(const clm::v1::MonitorDecision& decision) override;
  absl::StatusOr<std::vector<clm::v1::MonitorDecision>> LoadDecisions(size_t limit) override;
  absl::Status SavePendingJob(const std::string& job_id) override;
  absl::StatusOr<std::string> LoadPendingJob() override;

 private:
  explicit SqliteCadenceStateStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}

  absl::Mutex mu_;
  std::unique_ptr<Database> db_ ABSL_GUARDED_BY(mu_);
};

// The labelled data set and the training history, read from the trades and trainings tables.
//
// Each Load is ONE read transaction on a read-only connection of its own, so the counts agree with each
// other even while the ingest writer commits (WAL: readers never wait for the writer, nor it for them).
// Close times are stored in nanoseconds and reported in microseconds. new_trades_since_training counts the
// trades in scope with seq above MAX(trainings.max_seq) (every trade in scope when there is no training);
// TrainingState is COUNT(trainings) and MAX(finished_at_ns), for all trades whatever the scope.
// Thread-safe: concurrent Loads are serialized on the one connection (the monitor thread is the only
// regular caller).
class SqliteSnapshotSource final : public cadence::SnapshotSource {
 public:
  // `path` must exist and hold the latest schema (open the trade store or the state store first).
  static absl::StatusOr<std::unique_ptr<SqliteSnapshotSource>> Open(const std::string& path,
                                                                    const StoreOptions& options = {});

  absl::StatusOr<cadence::SourceSnapshot> Load(const cadence::Scope& scope) override;

 private:
  explicit SqliteSnapshotSource(std::unique_ptr<Database> db) : db_(std::move(db)) {}
  absl::StatusOr<cadence::SourceSnapshot> LoadLocked(const cadence::Scope& scope)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::unique_ptr<Database> db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clm::store

#endif  // CLM_LIB_STORE_SQLITE_CADENCE_STORE_H_
