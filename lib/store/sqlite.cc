#include "lib/store/sqlite.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/types/optional.h"
#include "absl/strings/str_cat.h"

namespace clm::store {

namespace {

// The payload that tells a storage fault apart from other errors of the same code.
constexpr absl::string_view kFaultPayload = "type.clm/clm.store.StorageFault";

absl::Status WithFault(absl::Status status, StorageFault fault) {
  status.SetPayload(kFaultPayload, absl::Cord(StorageFaultName(fault)));
  return status;
}

}  // namespace

StorageFault StorageFaultOf(const absl::Status& status) {
  if (status.ok()) return StorageFault::kNone;
  absl::optional<absl::Cord> payload = status.GetPayload(kFaultPayload);
  if (!payload.has_value()) return StorageFault::kNone;
  for (StorageFault fault : {StorageFault::kDiskFull, StorageFault::kIoError, StorageFault::kBusy}) {
    if (*payload == StorageFaultName(fault)) return fault;
  }
  return StorageFault::kNone;
}

absl::string_view StorageFaultName(StorageFault fault) {
  switch (fault) {
    case StorageFault::kDiskFull: return "disk_full";
    case StorageFault::kIoError: return "io_error";
    case StorageFault::kBusy: return "busy";
    case StorageFault::kNone: break;
  }
  return "none";
}

absl::Status SqliteError(int code, absl::string_view context, sqlite3* db) {
  // SQLite records the OS error of a failed statement (sqlite3_system_errno) but not of a failed COMMIT;
  // the callers here clear errno before each SQLite call, so what is left is the failing system call's.
  const int thread_errno = errno;
  const char* errmsg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  const char* file = db != nullptr ? sqlite3_db_filename(db, "main") : nullptr;
  const std::string store = file != nullptr && *file != '\0' ? absl::StrCat("the store ", file) : "the store";
  // The OS error means something only for I/O and open errors; for the others it is stale.
  const int primary = code & 0xff;
  int os_errno = 0;
  if (primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN) {
    os_errno = db != nullptr && sqlite3_system_errno(db) != 0 ? sqlite3_system_errno(db) : thread_errno;
  }
  switch (primary) {
    case SQLITE_IOERR:
      // A write the kernel refused for lack of room is disk full, whatever SQLite calls it (it reports
      // SQLITE_FULL only for ENOSPC on a short write).
      if (os_errno != ENOSPC && os_errno != EDQUOT && os_errno != EFBIG) {
        return WithFault(absl::UnavailableError(absl::StrCat(
                             store, " hit an I/O error (", errmsg, os_errno != 0 ? ": " : "",
                             os_errno != 0 ? std::strerror(os_errno) : "",
                             "); check the disk and the filesystem that hold it")),
                         StorageFault::kIoError);
      }
      [[fallthrough]];
    case SQLITE_FULL:
      return WithFault(absl::ResourceExhaustedError(absl::StrCat(
                           store, " is out of disk space (",
                           os_errno != 0 ? std::strerror(os_errno) : errmsg,
                           "); free space on the filesystem that holds it, or raise its quota or file size limit")),
                       StorageFault::kDiskFull);
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return WithFault(absl::UnavailableError(absl::StrCat(
                           store, " cannot be written (", errmsg, os_errno != 0 ? ": " : "",
                           os_errno != 0 ? std::strerror(os_errno) : "",
                           "); check the filesystem and the permissions of the data directory")),
                       StorageFault::kIoError);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return WithFault(absl::UnavailableError(absl::StrCat(
                           store, " stayed locked by another connection beyond the busy timeout (", errmsg, ")")),
                       StorageFault::kBusy);
    case SQLITE_CONSTRAINT:
      return absl::FailedPreconditionError(absl::StrCat(context, ": ", errmsg));
    case SQLITE_INTERRUPT:
      return absl::CancelledError(absl::StrCat(context, ": ", errmsg));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(absl::StrCat(context, ": ", errmsg));
    default:
      return absl::InternalError(absl::StrCat(context, ": ", errmsg));
  }
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
    listener_ = other.listener_;
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

absl::StatusOr<bool> Statement::Step() {
  errno = 0;  // see SqliteError
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(stmt_);
  absl::Status status = SqliteError(rc, sqlite3_sql(stmt_), db);
  if (listener_ != nullptr && StorageFaultOf(status) != StorageFault::kNone) listener_->OnStorageFault(status);
  return status;
}

absl::Status Statement::Run() {
  absl::StatusOr<bool> row = Step();
  if (!row.ok()) return row.status();
  return absl::OkStatus();
}

absl::string_view Statement::ColumnText(int col) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  if (text == nullptr) return {};
  return absl::string_view(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

absl::string_view Statement::ColumnBlob(int col) const {
  const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
  if (data == nullptr) return {};
  return absl::string_view(data, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path, const Options& options) {
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX | (options.read_only ? SQLITE_OPEN_READONLY
                                                        : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  errno = 0;  // see SqliteError
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, options.vfs.empty() ? nullptr : options.vfs.c_str());
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(rc, absl::StrCat("open ", path), db);
    sqlite3_close(db);
    if (options.fault_listener != nullptr && StorageFaultOf(status) != StorageFault::kNone) {
      options.fault_listener->OnStorageFault(status);
    }
    return status;
  }
  std::unique_ptr<Database> database(new Database(db, path, options.fault_listener));
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  sqlite3_extended_result_codes(db, 1);
  if (!options.read_only) {
    absl::StatusOr<Statement> wal = database->Prepare("PRAGMA journal_mode=WAL");
    if (!wal.ok()) return wal.status();
    absl::StatusOr<bool> row = wal->Step();
    if (!row.ok()) return row.status();
    if (!*row || wal->ColumnText(0) != "wal") {
      return absl::FailedPreconditionError(absl::StrCat(path, ": cannot switch the database to WAL mode"));
    }
  }
  absl::Status status = database->Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
  if (!status.ok()) return status;
  return database;
}

Database::~Database() { sqlite3_close_v2(db_); }

absl::StatusOr<Statement> Database::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return Reported(SqliteError(rc, absl::StrCat("prepare ", sql), db_));
  return Statement(stmt, listener_);
}

absl::Status Database::Exec(absl::string_view sql) {
  std::string owned(sql);
  char* error = nullptr;
  errno = 0;  // see SqliteError
  int rc = sqlite3_exec(db_, owned.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(rc, absl::StrCat(owned.substr(0, 60)), db_);
    sqlite3_free(error);
    return Reported(std::move(status));
  }
  return absl::OkStatus();
}

absl::Status Database::Reported(absl::Status status) const {
  if (listener_ != nullptr && StorageFaultOf(status) != StorageFault::kNone) listener_->OnStorageFault(status);
  return status;
}

absl::StatusOr<Transaction> Transaction::Begin(Database& db) {
  absl::Status status = db.Exec("BEGIN IMMEDIATE");
  if (!status.ok()) return status;
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) db_->Exec("ROLLBACK").IgnoreError();
}

absl::Status Transaction::Commit() {
  absl::Status status = db_->Exec("COMMIT");
  if (status.ok()) {
    if (db_->fault_listener() != nullptr) db_->fault_listener()->OnCommitted();
    db_ = nullptr;
  }
  // On failure the destructor rolls back: SQLite leaves the transaction open after a failed COMMIT.
  return status;
}

}  // namespace clm::store
