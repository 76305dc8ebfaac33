#include "lib/store/sqlite_deployment_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "lib/store/migrations.h"

namespace clm::store {

absl::StatusOr<std::unique_ptr<SqliteDeploymentStore>> SqliteDeploymentStore::Open(const std::string& path,
                                                                                   const StoreOptions& options) {
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path, Database::For(options));
  if (!db.ok()) return db.status();
  absl::Status status = Migrate(**db);
  if (!status.ok()) return status;
  return std::unique_ptr<SqliteDeploymentStore>(new SqliteDeploymentStore(std::move(*db)));
}

absl::StatusOr<deployment::StoredState> SqliteDeploymentStore::Load() {
  absl::MutexLock lock(&mu_);
  deployment::StoredState state;
  absl::StatusOr<Statement> stmt = db_->Prepare("SELECT version, record FROM deployment_versions");
  if (!stmt.ok()) return stmt.status();
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    absl::string_view blob = stmt->ColumnBlob(1);
    clm::v1::DeploymentVersion& v = state.versions.emplace_back();
    if (!v.ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
      return absl::DataLossError(absl::StrCat("deployment version ", stmt->ColumnInt(0), " is unreadable"));
    }
  }
  stmt = db_->Prepare("SELECT key, value FROM deployment_state");
  if (!stmt.ok()) return stmt.status();
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    const absl::string_view key = stmt->ColumnText(0);
    const int64_t value = stmt->ColumnInt(1);
    if (key == "production") state.production = static_cast<uint64_t>(value);
    if (key == "shadow") state.shadow = static_cast<uint64_t>(value);
    if (key == "sequence") state.sequence = static_cast<uint64_t>(value);
    if (key == "changed_at_ns") state.changed_at_ns = value;
  }
  return state;
}

absl::Status SqliteDeploymentStore::InsertAudit(const clm::v1::AuditEntry& audit) {
  absl::StatusOr<Statement> stmt = db_->Prepare("INSERT INTO deployment_audit(at_ns, entry) VALUES(?, ?)");
  if (!stmt.ok()) return stmt.status();
  stmt->BindInt(1, google::protobuf::util::TimeUtil::TimestampToNanoseconds(audit.at()));
  stmt->BindBlob(2, audit.SerializeAsString());
  return stmt->Run();
}

absl::Status SqliteDeploymentStore::Commit(const std::vector<clm::v1::DeploymentVersion>& changed,
                                           uint64_t production, uint64_t shadow, uint64_t sequence,
                                           int64_t changed_at_ns, const clm::v1::AuditEntry& audit) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Transaction> txn = Transaction::Begin(*db_);
  if (!txn.ok()) return txn.status();
  for (const clm::v1::DeploymentVersion& v : changed) {
    absl::StatusOr<Statement> stmt = db_->Prepare(
        "INSERT INTO deployment_versions(version, record) VALUES(?, ?) "
        "ON CONFLICT(version) DO UPDATE SET record = excluded.record");
    if (!stmt.ok()) return stmt.status();
    stmt->BindInt(1, static_cast<int64_t>(v.version()));
    stmt->BindBlob(2, v.SerializeAsString());
    if (absl::Status s = stmt->Run(); !s.ok()) return s;
  }
  for (const auto& [key, value] : {std::pair<const char*, int64_t>{"production", static_cast<int64_t>(production)},
                                   {"shadow", static_cast<int64_t>(shadow)},
                                   {"sequence", static_cast<int64_t>(sequence)},
                                   {"changed_at_ns", changed_at_ns}}) {
    absl::StatusOr<Statement> stmt = db_->Prepare(
        "INSERT INTO deployment_state(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    if (!stmt.ok()) return stmt.status();
    stmt->BindText(1, key);
    stmt->BindInt(2, value);
    if (absl::Status s = stmt->Run(); !s.ok()) return s;
  }
  if (absl::Status s = InsertAudit(audit); !s.ok()) return s;
  return txn->Commit();
}

absl::Status SqliteDeploymentStore::AppendAudit(const clm::v1::AuditEntry& audit) {
  absl::MutexLock lock(&mu_);
  return InsertAudit(audit);
}

absl::StatusOr<clm::v1::GetAuditResponse> SqliteDeploymentStore::ListAudit(uint32_t limit, uint64_t before_id) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt =
      db_->Prepare("SELECT id, entry FROM deployment_audit WHERE id < ? ORDER BY id DESC LIMIT ?");
  if (!stmt.ok()) return stmt.status();
  stmt->BindInt(1, before_id == 0 ? INT64_MAX : static_cast<int64_t>(before_id));
  stmt->BindInt(2, static_cast<int64_t>(limit) + 1);
  clm::v1::GetAuditResponse response;
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (static_cast<uint32_t>(response.entries_size()) == limit) {
      response.set_next_before_id(response.entries(response.entries_size() - 1).id());
      break;
    }
    clm::v1::AuditEntry* entry = response.add_entries();
    absl::string_view blob = stmt->ColumnBlob(1);
    if (!entry->ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
      return absl::DataLossError(absl::StrCat("audit entry ", stmt->ColumnInt(0), " is unreadable"));
    }
    entry->set_id(static_cast<uint64_t>(stmt->ColumnInt(0)));
  }
  return response;
}

}  // namespace clm::store
