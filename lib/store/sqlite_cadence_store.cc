#include "lib/store/sqlite_cadence_store.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "clm/v1/trade.pb.h"
#include "lib/store/migrations.h"
#include "lib/store/sqlite_trade_store.h"

namespace clm::store {
namespace {

constexpr char kPendingJobKey[] = "pending_job";

int64_t SqlLimit(size_t limit) {
  return static_cast<int64_t>(std::min<size_t>(limit, static_cast<size_t>(std::numeric_limits<int64_t>::max())));
}

// Floor division, so a (theoretical) close before 1970 still rounds towards the past.
int64_t NanosToMicros(int64_t ns) {
  int64_t us = ns / 1000;
  if (ns % 1000 < 0) --us;
  return us;
}

// Reads serialized messages from the first column of `stmt`, newest first as the query orders them.
template <typename Message>
absl::StatusOr<std::vector<Message>> ReadMessages(Statement& stmt, absl::string_view what) {
  std::vector<Message> out;
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    absl::string_view blob = stmt.ColumnBlob(0);
    Message& message = out.emplace_back();
    if (!message.ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
      return absl::DataLossError(absl::StrCat("a stored ", what, " is unreadable"));
    }
  }
  return out;
}

// "WHERE ..." restricting the trades table to a scope; BindScope binds in the same order from index 1.
std::string ScopeWhere(const cadence::Scope& scope) {
  if (scope.symbol.empty() && scope.model_id.empty()) return "";
  if (scope.model_id.empty()) return " WHERE symbol = ?";
  if (scope.symbol.empty()) return " WHERE model_id = ?";
  return " WHERE symbol = ? AND model_id = ?";
}

int BindScope(Statement& stmt, const cadence::Scope& scope, int first) {
  int i = first;
  if (!scope.symbol.empty()) stmt.BindText(i++, scope.symbol);
  if (!scope.model_id.empty()) stmt.BindText(i++, scope.model_id);
  return i;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// SqliteCadenceStateStore

absl::StatusOr<std::unique_ptr<SqliteCadenceStateStore>> SqliteCadenceStateStore::Open(const std::string& path,
                                                                                       const StoreOptions& store) {
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path, Database::For(store));
  if (!db.ok()) return db.status();
  if (absl::Status s = Migrate(**db); !s.ok()) return s;
  return std::unique_ptr<SqliteCadenceStateStore>(new SqliteCadenceStateStore(std::move(*db)));
}

absl::Status SqliteCadenceStateStore::AppendModeChange(const clm::v1::ModeChange& change) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt =
      db_->Prepare("INSERT INTO cadence_mode_changes(changed_at_ns, change) VALUES(?, ?)");
  if (!stmt.ok()) return stmt.status();
  stmt->BindInt(1, ToNanos(change.changed_at()));
  stmt->BindBlob(2, change.SerializeAsString());
  return stmt->Run();
}

absl::StatusOr<std::vector<clm::v1::ModeChange>> SqliteCadenceStateStore::LoadModeChanges(size_t limit) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt =
      db_->Prepare("SELECT change FROM cadence_mode_changes ORDER BY id DESC LIMIT ?");
  if (!stmt.ok()) return stmt.status();
  stmt->BindInt(1, SqlLimit(limit));
  return ReadMessages<clm::v1::ModeChange>(*stmt, "mode change");
}

absl::Status SqliteCadenceStateStore::AppendDecision(const clm::v1::MonitorDecision& decision) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt = db_->Prepare(
      "INSERT INTO cadence_decisions(id, decided_at_ns, decision) VALUES(?, ?, ?) "
      "ON CONFLICT(id) DO UPDATE SET decided_at_ns = excluded.decided_at_ns, decision = excluded.decision");
  if (!stmt.ok()) return stmt.status();
  stmt->BindInt(1, static_cast<int64_t>(decision.id()));
  stmt->BindInt(2, ToNanos(decision.decided_at()));
  stmt->BindBlob(3, decision.SerializeAsString());
  return stmt->Run();
}

absl::StatusOr<std::vector<clm::v1::MonitorDecision>> SqliteCadenceStateStore::LoadDecisions(size_t limit) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt = db_->Prepare("SELECT decision FROM cadence_decisions ORDER BY id DESC LIMIT ?");
  if (!stmt.ok()) return stmt.status();
  stmt->BindInt(1, SqlLimit(limit));
  return ReadMessages<clm::v1::MonitorDecision>(*stmt, "monitor decision");
}

absl::Status SqliteCadenceStateStore::SavePendingJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  // No row means no pending job, so clearing it deletes the row rather than storing an empty value.
  absl::StatusOr<Statement> stmt =
      job_id.empty() ? db_->Prepare("DELETE FROM cadence_state WHERE key = ?")
                     : db_->Prepare(
                           "INSERT INTO cadence_state(key, value) VALUES(?, ?) "
                           "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  if (!stmt.ok()) return stmt.status();
  stmt->BindText(1, kPendingJobKey);
  if (!job_id.empty()) stmt->BindText(2, job_id);
  return stmt->Run();
}

absl::StatusOr<std::string> SqliteCadenceStateStore::LoadPendingJob() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt = db_->Prepare("SELECT value FROM cadence_state WHERE key = ?");
  if (!stmt.ok()) return stmt.status();
  stmt->BindText(1, kPendingJobKey);
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  return *row ? std::string(stmt->ColumnText(0)) : std::string();
}

// ---------------------------------------------------------------------------------------------------------
// SqliteSnapshotSource

absl::StatusOr<std::unique_ptr<SqliteSnapshotSource>> SqliteSnapshotSource::Open(const std::string& path,
                                                                                 const StoreOptions& store) {
  Database::Options options = Database::For(store);
  options.read_only = true;
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path, options);
  if (!db.ok()) return db.status();
  // Fail at startup, not at the first evaluation, when the schema is missing.
  absl::StatusOr<Statement> probe = (*db)->Prepare("SELECT COUNT(*) FROM trainings");
  if (!probe.ok()) return probe.status();
  return std::unique_ptr<SqliteSnapshotSource>(new SqliteSnapshotSource(std::move(*db)));
}

absl::StatusOr<cadence::SourceSnapshot> SqliteSnapshotSource::Load(const cadence::Scope& scope) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = db_->Exec("BEGIN"); !s.ok()) return s;
  absl::StatusOr<cadence::SourceSnapshot> snapshot = LoadLocked(scope);
  // A read transaction has nothing to keep; ending it lets checkpoints move past this snapshot.
  absl::Status ended = db_->Exec("COMMIT");
  if (snapshot.ok() && !ended.ok()) return ended;
  return snapshot;
}

absl::StatusOr<cadence::SourceSnapshot> SqliteSnapshotSource::LoadLocked(const cadence::Scope& scope) {
  cadence::SourceSnapshot out;
  const std::string where = ScopeWhere(scope);

  // The first statement fixes the transaction's snapshot; everything after reads the same data.
  int64_t trained_up_to_seq = 0;
  {
    absl::StatusOr<Statement> stmt = db_->Prepare(
        "SELECT COUNT(*), COALESCE(MAX(finished_at_ns), 0), COALESCE(MAX(max_seq), 0) FROM trainings");
    if (!stmt.ok()) return stmt.status();
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    out.training.total_trainings = static_cast<uint64_t>(stmt->ColumnInt(0));
    if (out.training.total_trainings > 0) {
      out.training.last_training_at_us = NanosToMicros(stmt->ColumnInt(1));
      trained_up_to_seq = stmt->ColumnInt(2);
    }
  }
  {
    absl::StatusOr<Statement> stmt = db_->Prepare(absl::StrCat(
        "SELECT outcome, COUNT(*), MIN(closed_at_ns), MAX(closed_at_ns), SUM(seq > ?) FROM trades", where,
        " GROUP BY outcome"));
    if (!stmt.ok()) return stmt.status();
    stmt->BindInt(1, trained_up_to_seq);
    BindScope(*stmt, scope, 2);
    int64_t first_ns = 0;
    int64_t last_ns = 0;
    while (true) {
      absl::StatusOr<bool> row = stmt->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      const uint64_t count = static_cast<uint64_t>(stmt->ColumnInt(1));
      switch (stmt->ColumnInt(0)) {
        case clm::v1::TradeOutcome::WIN:
          out.data.wins += count;
          break;
        case clm::v1::TradeOutcome::LOSS:
          out.data.losses += count;
          break;
        case clm::v1::TradeOutcome::NEUTRAL:
          out.data.neutrals += count;
          break;
        default:
          continue;  // validation stores no other outcome; never let one skew total != sum of the parts
      }
      const int64_t lo = stmt->ColumnInt(2);
      const int64_t hi = stmt->ColumnInt(3);
      if (out.data.total == 0 || lo < first_ns) first_ns = lo;
      if (out.data.total == 0 || hi > last_ns) last_ns = hi;
      out.data.total += count;
      out.data.new_trades_since_training += static_cast<uint64_t>(stmt->ColumnInt(4));
    }
    if (out.data.total > 0) {
      out.data.first_closed_at_us = NanosToMicros(first_ns);
      out.data.last_closed_at_us = NanosToMicros(last_ns);
    }
  }
  {
    absl::StatusOr<Statement> stmt =
        db_->Prepare(absl::StrCat("SELECT symbol, COUNT(*) FROM trades", where, " GROUP BY symbol"));
    if (!stmt.ok()) return stmt.status();
    BindScope(*stmt, scope, 1);
    while (true) {
      absl::StatusOr<bool> row = stmt->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out.data.symbols.emplace_back(std::string(stmt->ColumnText(0)), static_cast<uint64_t>(stmt->ColumnInt(1)));
    }
  }
  {
    absl::StatusOr<Statement> stmt = db_->Prepare(absl::StrCat("SELECT DISTINCT model_id FROM trades", where));
    if (!stmt.ok()) return stmt.status();
    BindScope(*stmt, scope, 1);
    while (true) {
      absl::StatusOr<bool> row = stmt->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out.data.model_ids.emplace_back(stmt->ColumnText(0));
    }
  }
  return out;
}

}  // namespace clm::store
