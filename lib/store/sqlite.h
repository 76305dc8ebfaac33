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

// A storage fault: the store could not do its job for a reason outside the request, which goes away when the
// fault does. The caller may retry the same write; nothing of a failed transaction was stored.
enum class StorageFault {
  kNone,      // not a storage fault (a constraint, a bug, a corrupt file)
  kDiskFull,  // SQLITE_FULL, or a write refused with ENOSPC, EDQUOT or EFBIG (file size limit)
  kIoError,   // SQLITE_IOERR_*, SQLITE_CANTOPEN, SQLITE_READONLY: the disk or filesystem failed
  kBusy,      // SQLITE_BUSY / SQLITE_LOCKED beyond the busy timeout
};

// The fault a status from this layer carries (kNone for OK and for every other error).
StorageFault StorageFaultOf(const absl::Status& status);
// "disk_full", "io_error", "busy" (metric label values), "none".
absl::string_view StorageFaultName(StorageFault fault);

// Maps an SQLite result code to a status naming the store's file. Disk full becomes RESOURCE_EXHAUSTED
// (free space, then retry), I/O errors and busy timeouts UNAVAILABLE (retry once the fault goes); those three
// carry their StorageFault. Constraint violations become FAILED_PRECONDITION, corruption DATA_LOSS,
// everything else INTERNAL.
absl::Status SqliteError(int code, absl::string_view context, sqlite3* db);

// Told about storage faults and committed writes on the connections of a store, so one place can judge
// whether the store is usable. Called on the thread that hit the fault or committed, possibly with the
// store's own locks held: implementations must be quick and must not call back into the store.
class StoreFaultListener {
 public:
  virtual ~StoreFaultListener() = default;
  virtual void OnStorageFault(const absl::Status& status) = 0;
  // A write transaction committed durably.
  virtual void OnCommitted() = 0;
};

// How a store opens its connections. The defaults are production's.
struct StoreOptions {
  // A VFS registered with sqlite3_vfs_register, by name; empty: SQLite's default. Tests inject faults so.
  std::string vfs;
  StoreFaultListener* fault_listener = nullptr;  // may be null
};

class Statement final {
 public:
  Statement() = default;
  Statement(Statement&& other) noexcept : stmt_(other.stmt_), listener_(other.listener_) { other.stmt_ = nullptr; }
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
  Statement(sqlite3_stmt* stmt, StoreFaultListener* listener) : stmt_(stmt), listener_(listener) {}
  sqlite3_stmt* stmt_ = nullptr;
  StoreFaultListener* listener_ = nullptr;
};

// One SQLite connection. Not thread-safe: each thread that touches the store uses its own connection.
class Database final {
 public:
  struct Options {
    bool read_only = false;
    // How long a connection waits for another connection's write lock before SQLITE_BUSY.
    int busy_timeout_ms = 10000;
    std::string vfs;                                // see StoreOptions
    StoreFaultListener* fault_listener = nullptr;  // told about every storage fault on this connection
  };
  // The connection options of a store's read-write connections.
  static Options For(const StoreOptions& store) {
    Options options;
    options.vfs = store.vfs;
    options.fault_listener = store.fault_listener;
    return options;
  }

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
  StoreFaultListener* fault_listener() const { return listener_; }

 private:
  Database(sqlite3* db, std::string path, StoreFaultListener* listener)
      : db_(db), path_(std::move(path)), listener_(listener) {}
  // Passes `status` on to the listener when it is a storage fault; returns it.
  absl::Status Reported(absl::Status status) const;
  sqlite3* db_;
  std::string path_;
  StoreFaultListener* listener_;
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
  // On success the listener (if any) hears OnCommitted.
  absl::Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

}  // namespace clm::store

#endif  // CLM_LIB_STORE_SQLITE_H_
