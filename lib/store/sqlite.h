#ifndef CLM_LIB_STORE_SQLITE_H_
#define CLM_LIB_STORE_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clm::store {

// A thin RAII layer over the SQLite C API. It adds nothing but ownership and absl::Status errors:
// every call site still sees the SQL it runs.

// Maps an SQLite result code to a status. Disk-full and I/O errors become UNAVAILABLE (the caller may retry
// once the fault goes), constraint violations FAILED_PRECONDITION, everything else INTERNAL.
absl::Status SqliteError(int code, absl::string_view context, sqlite3* db);

class Statement final {
 public:
  Statement() = default;
  Statement(Statement&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  void BindInt(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  void BindDouble(int index, double value) { sqlite3_bind_double(stmt_, index, value); }
  void BindNull(int index) { sqlite3_bind_null(stmt_, index); }
  // The bytes are copied (SQLITE_TRANSIENT): the caller's buffer may go away before Step().
  void BindText(int index, absl::string_view value) {
    sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  }
  void BindBlob(int index, absl::string_view value) {
    sqlite3_bind_blob(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  }

  // Returns true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows.
  absl::Status Run();
  // Makes the statement reusable and clears its bindings.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  // Columns are 0-based, as in SQLite.
  int64_t ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }
  double ColumnDouble(int col) const { return sqlite3_column_double(stmt_, col); }
  bool ColumnIsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  absl::string_view ColumnText(int col) const;
  absl::string_view ColumnBlob(int col) const;

 private:
  friend class Database;
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  sqlite3_stmt* stmt_ = nullptr;
};

// One SQLite connection. Not thread-safe: each thread that touches the store uses its own connection.
class Database final {
 public:
  struct Options {
    bool read_only = false;
    // How long a connection waits for another connection's write lock before SQLITE_BUSY.
    int busy_timeout_ms = 10000;
  };

  // Opens (creating when allowed) the database at `path` in WAL mode with synchronous=FULL, so a
  // committed transaction survives a power cut, and foreign keys on.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path, const Options& options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  // Runs one or more statements that return no rows.
  absl::Status Exec(absl::string_view sql);
  int64_t Changes() const { return sqlite3_changes64(db_); }
  int64_t LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back on destruction unless committed. IMMEDIATE takes the write lock
// up front, so a transaction never fails half-way with SQLITE_BUSY on its first write.
class Transaction final {
 public:
  static absl::StatusOr<Transaction> Begin(Database& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  absl::Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

}  // namespace clm::store

#endif  // CLM_LIB_STORE_SQLITE_H_
