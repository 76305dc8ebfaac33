#include "lib/store/sqlite_trade_store.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "lib/store/migrations.h"

namespace clm::store {
namespace {

constexpr int kMaxIdleReaders = 4;
constexpr absl::Duration kCheckpointInterval = absl::Milliseconds(500);

// Builds "WHERE ..." for a DatasetQuery; binds in the same order via BindQuery.
std::string WhereClause(const DatasetQuery& q) {
  std::vector<std::string> terms;
  if (!q.symbol.empty()) terms.push_back("symbol = ?");
  if (!q.model_id.empty()) terms.push_back("model_id = ?");
  if (q.closed_from_ns) terms.push_back("closed_at_ns >= ?");
  if (q.closed_to_ns) terms.push_back("closed_at_ns < ?");
  if (q.after_seq > 0) terms.push_back("seq > ?");
  if (terms.empty()) return "";
  std::string out = " WHERE ";
  for (size_t i = 0; i < terms.size(); ++i) absl::StrAppend(&out, i ? " AND " : "", terms[i]);
  return out;
}

void BindQuery(Statement& stmt, const DatasetQuery& q) {
  int i = 1;
  if (!q.symbol.empty()) stmt.BindText(i++, q.symbol);
  if (!q.model_id.empty()) stmt.BindText(i++, q.model_id);
  if (q.closed_from_ns) stmt.BindInt(i++, *q.closed_from_ns);
  if (q.closed_to_ns) stmt.BindInt(i++, *q.closed_to_ns);
  if (q.after_seq > 0) stmt.BindInt(i++, q.after_seq);
}

int64_t FileSize(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

}  // namespace

int64_t ToNanos(const google::protobuf::Timestamp& ts) {
  return google::protobuf::util::TimeUtil::TimestampToNanoseconds(ts);
}

google::protobuf::Timestamp FromNanos(int64_t ns) { return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(ns); }

absl::StatusOr<std::unique_ptr<SqliteTradeStore>> SqliteTradeStore::Open(const std::string& path,
                                                                     const StoreOptions& options) {
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path, Database::For(options));
  if (!db.ok()) return db.status();
  absl::Status status = Migrate(**db);
  if (!status.ok()) return status;
  WriterStatements stmts;
  absl::StatusOr<Statement> stmt = (*db)->Prepare(
      "INSERT INTO trades(trade_id, content_hash, symbol, model_id, confidence, outcome, pnl, opened_at_ns, "
      "closed_at_ns, side, model_confidences, ingested_at_ns) VALUES(?,?,?,?,?,?,?,?,?,?,?,?) "
      "ON CONFLICT(trade_id) DO NOTHING");
  if (!stmt.ok()) return stmt.status();
  stmts.insert_trade = std::move(*stmt);
  stmt = (*db)->Prepare("SELECT content_hash FROM trades WHERE trade_id = ?");
  if (!stmt.ok()) return stmt.status();
  stmts.find_hash = std::move(*stmt);
  stmt = (*db)->Prepare(
      "INSERT INTO dead_letters(received_at_ns, batch_id, idx, trade_id, field, reason, payload) "
      "VALUES(?,?,?,?,?,?,?)");
  if (!stmt.ok()) return stmt.status();
  stmts.insert_dead_letter = std::move(*stmt);
  // The writer keeps a large page cache (index pages of a big group stay hot) and never checkpoints itself:
  // the checkpoint thread does, PASSIVE, so it never blocks the writer. The log is cut back to 64 MiB
  // whenever it restarts, so a burst does not leave a huge file behind.
  status = (*db)->Exec("PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=67108864;");
  if (!status.ok()) return status;
  // The checkpointer tells no one of its faults: nothing waits on it, and a failed round is simply redone.
  Database::Options checkpointer_options;
  checkpointer_options.vfs = options.vfs;
  absl::StatusOr<std::unique_ptr<Database>> checkpointer = Database::Open(path, checkpointer_options);
  if (!checkpointer.ok()) return checkpointer.status();
  return std::unique_ptr<SqliteTradeStore>(
      new SqliteTradeStore(path, options, std::move(*db), std::move(stmts), std::move(*checkpointer)));
}

SqliteTradeStore::SqliteTradeStore(std::string path, StoreOptions options, std::unique_ptr<Database> writer,
                                   WriterStatements statements, std::unique_ptr<Database> checkpointer)
    : path_(std::move(path)),
      options_(std::move(options)),
      writer_(std::move(writer)),
      stmts_(std::move(statements)),
      checkpointer_(std::move(checkpointer)),
      checkpoint_thread_([this] { CheckpointLoop(); }) {}

SqliteTradeStore::~SqliteTradeStore() {
  {
    absl::MutexLock lock(&checkpoint_mu_);
    stop_checkpoints_ = true;
  }
  checkpoint_thread_.join();
  // One last full checkpoint, so a clean shutdown leaves everything in the database file.
  checkpointer_->Exec("PRAGMA wal_checkpoint(TRUNCATE)").IgnoreError();
}

void SqliteTradeStore::CheckpointLoop() {
  absl::MutexLock lock(&checkpoint_mu_);
  while (!stop_checkpoints_) {
    checkpoint_mu_.AwaitWithTimeout(absl::Condition(&stop_checkpoints_), kCheckpointInterval);
    if (stop_checkpoints_) break;
    checkpoint_mu_.Unlock();
    // PASSIVE copies what it can without waiting for the writer or readers; a failure (busy) just means
    // the next round does it.
    checkpointer_->Exec("PRAGMA wal_checkpoint(PASSIVE)").IgnoreError();
    checkpoint_mu_.Lock();
  }
}

absl::StatusOr<std::vector<BatchResult>> SqliteTradeStore::WriteBatches(absl::Span<PendingBatch* const> batches,
                                                                        int64_t now_ns) {
  absl::MutexLock lock(&write_mu_);
  std::vector<BatchResult> results(batches.size());
  absl::StatusOr<Transaction> txn = Transaction::Begin(*writer_);
  if (!txn.ok()) return txn.status();
  for (size_t i = 0; i < batches.size(); ++i) {
    absl::Status status = WriteBatch(*batches[i], now_ns, results[i]);
    if (!status.ok()) return status;  // the transaction rolls back: nothing of the group is stored
  }
  absl::Status status = txn->Commit();
  if (!status.ok()) return status;
  return results;
}

absl::Status SqliteTradeStore::WriteBatch(PendingBatch& batch, int64_t now_ns, BatchResult& result) {
  Statement& insert = stmts_.insert_trade;
  std::string model_confidences;
  for (size_t i = 0; i < batch.trades.size(); ++i) {
    const clm::v1::TradeOutcome& t = batch.trades[i];
    insert.Reset();
    insert.BindText(1, t.trade_id());
    insert.BindInt(2, static_cast<int64_t>(batch.content_hashes[i]));
    insert.BindText(3, t.symbol());
    insert.BindText(4, t.model_id());
    insert.BindDouble(5, t.confidence());
    insert.BindInt(6, t.outcome());
    insert.BindDouble(7, t.pnl());
    if (t.has_opened_at()) {
      insert.BindInt(8, ToNanos(t.opened_at()));
    } else {
      insert.BindNull(8);
    }
    insert.BindInt(9, ToNanos(t.closed_at()));
    insert.BindInt(10, t.side());
    if (t.model_confidences().empty()) {
      insert.BindNull(11);
    } else {
      clm::v1::TradeOutcome only_models;
      *only_models.mutable_model_confidences() = t.model_confidences();
      model_confidences.clear();
      only_models.SerializeToString(&model_confidences);
      insert.BindBlob(11, model_confidences);
    }
    insert.BindInt(12, now_ns);
    absl::Status status = insert.Run();
    if (!status.ok()) return status;
    if (writer_->Changes() == 1) {
      ++result.accepted;
      result.accepted_positions.push_back(static_cast<uint32_t>(i));
      continue;
    }
    // The id is taken: same content is a harmless resend, different content a conflict.
    Statement& find = stmts_.find_hash;
    find.Reset();
    find.BindText(1, t.trade_id());
    absl::StatusOr<bool> row = find.Step();
    if (!row.ok()) return row.status();
    const bool same = *row && static_cast<uint64_t>(find.ColumnInt(0)) == batch.content_hashes[i];
    // A statement left on a row keeps its read transaction open: the WAL could then never be checkpointed.
    find.Reset();
    if (same) {
      ++result.duplicates;
      continue;
    }
    Rejection conflict;
    conflict.index = batch.indices[i];
    conflict.trade_id = t.trade_id();
    conflict.field = "trade_id";
    conflict.reason = "conflict: a different trade with this trade_id is already stored; the stored trade is kept";
    t.SerializeToString(&conflict.payload);
    status = InsertDeadLetter(conflict, batch.batch_id, now_ns);
    if (!status.ok()) return status;
    result.conflicts.push_back(std::move(conflict));
  }
  for (const Rejection& rejection : batch.rejected) {
    absl::Status status = InsertDeadLetter(rejection, batch.batch_id, now_ns);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status SqliteTradeStore::InsertDeadLetter(const Rejection& r, uint64_t batch_id, int64_t now_ns) {
  Statement& stmt = stmts_.insert_dead_letter;
  stmt.Reset();
  stmt.BindInt(1, now_ns);
  stmt.BindInt(2, static_cast<int64_t>(batch_id));
  stmt.BindInt(3, r.index);
  stmt.BindText(4, r.trade_id);
  stmt.BindText(5, r.field);
  stmt.BindText(6, r.reason);
  stmt.BindBlob(7, r.payload);
  return stmt.Run();
}

absl::StatusOr<std::unique_ptr<Database>> SqliteTradeStore::AcquireReader() {
  {
    absl::MutexLock lock(&readers_mu_);
    if (!idle_readers_.empty()) {
      std::unique_ptr<Database> db = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return db;
    }
  }
  Database::Options options = Database::For(options_);
  options.read_only = true;
  return Database::Open(path_, options);
}

void SqliteTradeStore::ReleaseReader(std::unique_ptr<Database> db) {
  absl::MutexLock lock(&readers_mu_);
  if (idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(db));
}

// Returns its connection to the pool on every path out of a read.
class SqliteTradeStore::ReaderLease final {
 public:
  ReaderLease(SqliteTradeStore* store, std::unique_ptr<Database> db) : store_(store), db_(std::move(db)) {}
  ~ReaderLease() { store_->ReleaseReader(std::move(db_)); }
  Database& db() { return *db_; }

 private:
  SqliteTradeStore* store_;
  std::unique_ptr<Database> db_;
};

namespace {

// Lets a caller stop a long read (DatasetQuery::stop): SQLite polls the handler every few thousand virtual
// machine steps and interrupts the statement (SQLITE_INTERRUPT, so CANCELLED) once it returns true. The handler
// is removed again before the connection goes back to the pool.
class StopWhen final {
 public:
  StopWhen(Database& db, const std::function<bool()>& stop) : db_(db), stop_(stop) {
    if (stop_) sqlite3_progress_handler(db_.raw(), kStopPollSteps, &StopWhen::Poll, this);
  }
  ~StopWhen() {
    if (stop_) sqlite3_progress_handler(db_.raw(), 0, nullptr, nullptr);
  }
  StopWhen(const StopWhen&) = delete;
  StopWhen& operator=(const StopWhen&) = delete;

 private:
  static constexpr int kStopPollSteps = 10000;
  static int Poll(void* self) { return static_cast<StopWhen*>(self)->stop_() ? 1 : 0; }

  Database& db_;
  const std::function<bool()>& stop_;
};

}  // namespace

absl::StatusOr<clm::v1::DatasetSummary> SqliteTradeStore::Summarize(const DatasetQuery& query) {
  absl::StatusOr<std::unique_ptr<Database>> db = AcquireReader();
  if (!db.ok()) return db.status();
  ReaderLease lease(this, std::move(*db));
  StopWhen stop(lease.db(), query.stop);
  // One snapshot for all three queries, so the counts agree with each other.
  absl::Status status = lease.db().Exec("BEGIN");
  if (!status.ok()) return status;
  struct EndRead {
    Database& db;
    ~EndRead() { db.Exec("COMMIT").IgnoreError(); }
  } end_read{lease.db()};

  clm::v1::DatasetSummary summary;
  std::string where = WhereClause(query);
  absl::StatusOr<Statement> stmt = lease.db().Prepare(
      absl::StrCat("SELECT outcome, COUNT(*), MIN(closed_at_ns), MAX(closed_at_ns) FROM trades", where,
                   " GROUP BY outcome"));
  if (!stmt.ok()) return stmt.status();
  BindQuery(*stmt, query);
  int64_t first = 0, last = 0;
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    uint64_t count = static_cast<uint64_t>(stmt->ColumnInt(1));
    switch (stmt->ColumnInt(0)) {
      case clm::v1::TradeOutcome::WIN: summary.set_wins(count); break;
      case clm::v1::TradeOutcome::LOSS: summary.set_losses(count); break;
      case clm::v1::TradeOutcome::NEUTRAL: summary.set_neutrals(count); break;
      default: break;
    }
    int64_t lo = stmt->ColumnInt(2), hi = stmt->ColumnInt(3);
    if (summary.total() == 0 || lo < first) first = lo;
    if (summary.total() == 0 || hi > last) last = hi;
    summary.set_total(summary.total() + count);
  }
  if (summary.total() > 0) {
    *summary.mutable_first_closed_at() = FromNanos(first);
    *summary.mutable_last_closed_at() = FromNanos(last);
    summary.set_span_days(static_cast<double>(last - first) / (86400.0 * 1e9));
  }
  for (const char* column : {"symbol", "model_id"}) {
    stmt = lease.db().Prepare(
        absl::StrCat("SELECT ", column, ", COUNT(*) FROM trades", where, " GROUP BY ", column));
    if (!stmt.ok()) return stmt.status();
    BindQuery(*stmt, query);
    auto* counts = std::string_view(column) == "symbol" ? summary.mutable_trades_per_symbol()
                                                         : summary.mutable_trades_per_model();
    while (true) {
      absl::StatusOr<bool> row = stmt->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      (*counts)[std::string(stmt->ColumnText(0))] = static_cast<uint64_t>(stmt->ColumnInt(1));
    }
  }
  return summary;
}

absl::StatusOr<std::vector<Trade>> SqliteTradeStore::LoadTrades(const DatasetQuery& query) {
  absl::StatusOr<std::unique_ptr<Database>> db = AcquireReader();
  if (!db.ok()) return db.status();
  ReaderLease lease(this, std::move(*db));
  StopWhen stop(lease.db(), query.stop);
  absl::StatusOr<Statement> stmt = lease.db().Prepare(absl::StrCat(
      "SELECT seq, trade_id, symbol, model_id, confidence, outcome, pnl, opened_at_ns, closed_at_ns, side, "
      "model_confidences FROM trades",
      WhereClause(query), " ORDER BY closed_at_ns, seq"));
  if (!stmt.ok()) return stmt.status();
  BindQuery(*stmt, query);
  std::vector<Trade> trades;
  clm::v1::TradeOutcome models;
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    Trade& t = trades.emplace_back();
    t.seq = stmt->ColumnInt(0);
    t.trade_id = std::string(stmt->ColumnText(1));
    t.symbol = std::string(stmt->ColumnText(2));
    t.model_id = std::string(stmt->ColumnText(3));
    t.confidence = stmt->ColumnDouble(4);
    t.outcome = static_cast<Outcome>(stmt->ColumnInt(5));
    t.pnl = stmt->ColumnDouble(6);
    t.opened_at_us = stmt->ColumnIsNull(7) ? 0 : stmt->ColumnInt(7) / 1000;
    t.closed_at_us = stmt->ColumnInt(8) / 1000;
    t.side = static_cast<int>(stmt->ColumnInt(9));
    if (!stmt->ColumnIsNull(10)) {
      absl::string_view blob = stmt->ColumnBlob(10);
      models.Clear();
      if (!models.ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
        return absl::DataLossError(absl::StrCat("trade ", t.trade_id, ": stored model_confidences are unreadable"));
      }
      t.model_confidences.assign(models.model_confidences().begin(), models.model_confidences().end());
      std::sort(t.model_confidences.begin(), t.model_confidences.end());
    }
  }
  return trades;
}

absl::StatusOr<int64_t> SqliteTradeStore::MaxSeq() {
  absl::StatusOr<std::unique_ptr<Database>> db = AcquireReader();
  if (!db.ok()) return db.status();
  ReaderLease lease(this, std::move(*db));
  absl::StatusOr<Statement> stmt = lease.db().Prepare("SELECT COALESCE(MAX(seq), 0) FROM trades");
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  return stmt->ColumnInt(0);
}

absl::StatusOr<clm::v1::ListDeadLettersResponse> SqliteTradeStore::ListDeadLetters(uint32_t limit,
                                                                                    uint64_t before_id) {
  clm::v1::ListDeadLettersResponse response;
  if (limit == 0) return response;
  absl::StatusOr<std::unique_ptr<Database>> db = AcquireReader();
  if (!db.ok()) return db.status();
  ReaderLease lease(this, std::move(*db));
  absl::StatusOr<Statement> stmt = lease.db().Prepare(
      "SELECT id, received_at_ns, batch_id, idx, trade_id, field, reason, payload FROM dead_letters "
      "WHERE id < ? ORDER BY id DESC LIMIT ?");
  if (!stmt.ok()) return stmt.status();
  stmt->BindInt(1, before_id == 0 ? INT64_MAX : static_cast<int64_t>(before_id));
  stmt->BindInt(2, static_cast<int64_t>(limit) + 1);  // one more tells whether a next page exists
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (static_cast<uint32_t>(response.entries_size()) == limit) {
      response.set_next_before_id(response.entries(response.entries_size() - 1).id());
      break;
    }
    clm::v1::DeadLetter* entry = response.add_entries();
    entry->set_id(static_cast<uint64_t>(stmt->ColumnInt(0)));
    *entry->mutable_received_at() = FromNanos(stmt->ColumnInt(1));
    entry->set_batch_id(static_cast<uint64_t>(stmt->ColumnInt(2)));
    entry->set_index(static_cast<uint32_t>(stmt->ColumnInt(3)));
    entry->set_trade_id(std::string(stmt->ColumnText(4)));
    entry->set_field(std::string(stmt->ColumnText(5)));
    entry->set_reason(std::string(stmt->ColumnText(6)));
    absl::string_view payload = stmt->ColumnBlob(7);
    entry->mutable_trade()->ParseFromArray(payload.data(), static_cast<int>(payload.size()));
  }
  return response;
}

int64_t SqliteTradeStore::SizeBytes() const { return FileSize(path_) + FileSize(path_ + "-wal"); }

}  // namespace clm::store
