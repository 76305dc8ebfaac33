#include "lib/store/sqlite_job_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/store/migrations.h"
#include "lib/store/sqlite_trade_store.h"

namespace clm::store {
namespace {

absl::StatusOr<clm::v1::Job> ParseJob(absl::string_view bytes, absl::string_view id) {
  clm::v1::Job job;
  if (!job.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat("job ", id, ": stored record is unreadable"));
  }
  return job;
}

// Reads every row of a `SELECT job, id ...` statement.
absl::StatusOr<std::vector<clm::v1::Job>> ReadJobs(Statement& stmt) {
  std::vector<clm::v1::Job> jobs;
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    absl::StatusOr<clm::v1::Job> job = ParseJob(stmt.ColumnBlob(0), stmt.ColumnText(1));
    if (!job.ok()) return job.status();
    jobs.push_back(std::move(*job));
  }
  return jobs;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(const std::string& path,
                                                                     const StoreOptions& options) {
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path, Database::For(options));
  if (!db.ok()) return db.status();
  absl::Status status = Migrate(**db);
  if (!status.ok()) return status;
  return std::unique_ptr<SqliteJobStore>(new SqliteJobStore(std::move(*db)));
}

absl::Status SqliteJobStore::PutLocked(const clm::v1::Job& job, const std::string* result) {
  clm::v1::Job without_result = job;
  without_result.clear_result();
  absl::StatusOr<Statement> stmt = db_->Prepare(
      "INSERT INTO jobs(id, state, created_at_ns, job, result) VALUES(?, ?, ?, ?, ?) "
      "ON CONFLICT(id) DO UPDATE SET state = excluded.state, job = excluded.job, "
      "result = COALESCE(excluded.result, jobs.result)");
  if (!stmt.ok()) return stmt.status();
  stmt->BindText(1, job.id());
  stmt->BindInt(2, job.state());
  stmt->BindInt(3, ToNanos(job.created_at()));
  stmt->BindBlob(4, without_result.SerializeAsString());
  if (result != nullptr) {
    stmt->BindBlob(5, *result);
  } else {
    stmt->BindNull(5);
  }
  return stmt->Run();
}

absl::Status SqliteJobStore::Put(const clm::v1::Job& job) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Transaction> txn = Transaction::Begin(*db_);
  if (!txn.ok()) return txn.status();
  absl::Status status = PutLocked(job, nullptr);
  if (!status.ok()) return status;
  return txn->Commit();
}

absl::Status SqliteJobStore::Complete(const clm::v1::Job& job) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Transaction> txn = Transaction::Begin(*db_);
  if (!txn.ok()) return txn.status();
  std::string result = job.result().SerializeAsString();
  absl::Status status = PutLocked(job, &result);
  if (!status.ok()) return status;
  absl::StatusOr<Statement> stmt = db_->Prepare(
      "INSERT INTO trainings(job_id, finished_at_ns, max_seq) VALUES(?, ?, ?) "
      "ON CONFLICT(job_id) DO NOTHING");
  if (!stmt.ok()) return stmt.status();
  stmt->BindText(1, job.id());
  stmt->BindInt(2, ToNanos(job.finished_at()));
  stmt->BindInt(3, static_cast<int64_t>(job.max_seq()));
  status = stmt->Run();
  if (!status.ok()) return status;
  return txn->Commit();
}

absl::StatusOr<clm::v1::Job> SqliteJobStore::Get(const std::string& id, bool with_result) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt =
      db_->Prepare(with_result ? "SELECT job, result FROM jobs WHERE id = ?" : "SELECT job FROM jobs WHERE id = ?");
  if (!stmt.ok()) return stmt.status();
  stmt->BindText(1, id);
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("id: no job ", id));
  absl::StatusOr<clm::v1::Job> job = ParseJob(stmt->ColumnBlob(0), id);
  if (!job.ok()) return job.status();
  if (with_result && !stmt->ColumnIsNull(1)) {
    absl::string_view blob = stmt->ColumnBlob(1);
    if (!job->mutable_result()->ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
      return absl::DataLossError(absl::StrCat("job ", id, ": stored result is unreadable"));
    }
  }
  return job;
}

absl::StatusOr<std::vector<clm::v1::Job>> SqliteJobStore::List(clm::v1::JobState state, const std::string& after_id,
                                                               size_t limit) {
  absl::MutexLock lock(&mu_);
  // Keyset paging on (created_at_ns, id), newest first.
  std::string sql = "SELECT job, id FROM jobs WHERE 1 = 1";
  if (state != clm::v1::JOB_STATE_UNSPECIFIED) sql += " AND state = ?1";
  if (!after_id.empty()) {
    sql +=
        " AND (created_at_ns, id) < (SELECT created_at_ns, id FROM jobs WHERE id = ?2)";
  }
  sql += " ORDER BY created_at_ns DESC, id DESC LIMIT ?3";
  absl::StatusOr<Statement> stmt = db_->Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  if (state != clm::v1::JOB_STATE_UNSPECIFIED) stmt->BindInt(1, state);
  if (!after_id.empty()) stmt->BindText(2, after_id);
  stmt->BindInt(3, static_cast<int64_t>(limit));
  return ReadJobs(*stmt);
}

absl::StatusOr<std::vector<clm::v1::Job>> SqliteJobStore::Unfinished() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt =
      db_->Prepare("SELECT job, id FROM jobs WHERE state IN (?, ?) ORDER BY created_at_ns, id");
  if (!stmt.ok()) return stmt.status();
  stmt->BindInt(1, clm::v1::QUEUED);
  stmt->BindInt(2, clm::v1::RUNNING);
  return ReadJobs(*stmt);
}

}  // namespace clm::store
