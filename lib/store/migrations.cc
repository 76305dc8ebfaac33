#include "lib/store/migrations.h"

#include <array>
#include <chrono>

#include "absl/strings/str_cat.h"

namespace clm::store {
namespace {

struct Migration {
  int version;
  const char* sql;
};

// Append only: a released migration is never edited, a change is a new version.
constexpr std::array kMigrations = {
    Migration{1, R"sql(
      CREATE TABLE trades (
        seq INTEGER PRIMARY KEY,           -- ingest order; rows are never deleted, so it only grows
        trade_id TEXT NOT NULL UNIQUE,     -- the idempotency key
        content_hash INTEGER NOT NULL,     -- fingerprint of the canonical content, tells duplicates from conflicts
        symbol TEXT NOT NULL,
        model_id TEXT NOT NULL,
        confidence REAL NOT NULL,
        outcome INTEGER NOT NULL,
        pnl REAL NOT NULL,
        opened_at_ns INTEGER,
        closed_at_ns INTEGER NOT NULL,
        side INTEGER NOT NULL,
        model_confidences BLOB,            -- serialized clm.v1.TradeOutcome holding only model_confidences
        ingested_at_ns INTEGER NOT NULL
      );
      CREATE INDEX trades_by_close ON trades(closed_at_ns);
      CREATE INDEX trades_by_symbol ON trades(symbol, closed_at_ns);
      CREATE INDEX trades_by_model ON trades(model_id, closed_at_ns);
      CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY,
        received_at_ns INTEGER NOT NULL,
        batch_id INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        trade_id TEXT NOT NULL,
        field TEXT NOT NULL,
        reason TEXT NOT NULL,
        payload BLOB NOT NULL              -- serialized clm.v1.TradeOutcome as received
      );
    )sql"},
    Migration{2, R"sql(
      -- Successful calibration trainings; the cadence triggers count trades stored after max_seq.
      CREATE TABLE trainings (
        id INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL UNIQUE,
        finished_at_ns INTEGER NOT NULL,
        max_seq INTEGER NOT NULL              -- highest trades.seq the training could see
      );
      -- The cadence monitor's durable state.
      CREATE TABLE cadence_mode_changes (
        id INTEGER PRIMARY KEY,
        changed_at_ns INTEGER NOT NULL,
        change BLOB NOT NULL                  -- serialized clm.v1.ModeChange
      );
      CREATE TABLE cadence_decisions (
        id INTEGER PRIMARY KEY,               -- the monitor's decision id
        decided_at_ns INTEGER NOT NULL,
        decision BLOB NOT NULL                -- serialized clm.v1.MonitorDecision
      );
      CREATE TABLE cadence_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
      -- Calibration jobs: the job (request, state, progress, error) and its result, kept apart so listing
      -- jobs never reads results.
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,                  -- cal_YYYYMMDD_HHMMSS[_N]
        state INTEGER NOT NULL,
        created_at_ns INTEGER NOT NULL,
        job BLOB NOT NULL,                    -- serialized clm.v1.Job without its result
        result BLOB                           -- serialized clm.v1.CalibrationResult, when succeeded
      );
      CREATE INDEX jobs_by_created ON jobs(created_at_ns);
    )sql"},
    Migration{3, R"sql(
      -- Deployment versions (immutable but for their stage history), the active state, and the audit.
      CREATE TABLE deployment_versions (
        version INTEGER PRIMARY KEY,
        record BLOB NOT NULL                  -- serialized clm.v1.DeploymentVersion
      );
      CREATE TABLE deployment_state (
        key TEXT PRIMARY KEY,                 -- production, shadow, sequence, changed_at_ns
        value INTEGER NOT NULL
      );
      CREATE TABLE deployment_audit (
        id INTEGER PRIMARY KEY,
        at_ns INTEGER NOT NULL,
        entry BLOB NOT NULL                   -- serialized clm.v1.AuditEntry
      );
    )sql"},
    Migration{4, R"sql(
      -- One row the store health probe rewrites and reads back, to learn whether the store takes writes.
      CREATE TABLE store_probe (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        probed_at_ns INTEGER NOT NULL
      );
    )sql"},
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int LatestSchemaVersion() { return kMigrations.back().version; }

absl::Status Migrate(Database& db) {
  absl::Status status = db.Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at_ns INTEGER NOT NULL)");
  if (!status.ok()) return status;
  for (const Migration& migration : kMigrations) {
    absl::StatusOr<Transaction> txn = Transaction::Begin(db);
    if (!txn.ok()) return txn.status();
    absl::StatusOr<Statement> current = db.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!current.ok()) return current.status();
    absl::StatusOr<bool> row = current->Step();
    if (!row.ok()) return row.status();
    int64_t applied = current->ColumnInt(0);
    if (applied > LatestSchemaVersion()) {
      return absl::FailedPreconditionError(
          absl::StrCat(db.path(), ": schema version ", applied, " is newer than this build understands (",
                       LatestSchemaVersion(), "); run a newer clm-server"));
    }
    if (applied >= migration.version) continue;  // the transaction rolls back: nothing to do
    status = db.Exec(migration.sql);
    if (!status.ok()) return status;
    absl::StatusOr<Statement> record = db.Prepare("INSERT INTO schema_migrations(version, applied_at_ns) VALUES(?, ?)");
    if (!record.ok()) return record.status();
    record->BindInt(1, migration.version);
    record->BindInt(2, NowNs());
    status = record->Run();
    if (!status.ok()) return status;
    status = txn->Commit();
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace clm::store
