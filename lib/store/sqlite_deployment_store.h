#ifndef CLM_LIB_STORE_SQLITE_DEPLOYMENT_STORE_H_
#define CLM_LIB_STORE_SQLITE_DEPLOYMENT_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "lib/deployment/deployment_manager.h"
#include "lib/store/sqlite.h"

namespace clm::store {

// DeploymentStore on the embedded SQLite database (deployment_* tables), one connection under a mutex.
class SqliteDeploymentStore final : public deployment::DeploymentStore {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteDeploymentStore>> Open(const std::string& path,
                                                                     const StoreOptions& options = {});

  absl::StatusOr<deployment::StoredState> Load() override;
  absl::Status Commit(const std::vector<clm::v1::DeploymentVersion>& changed, uint64_t production,
                      uint64_t shadow, uint64_t sequence, int64_t changed_at_ns,
                      const clm::v1::AuditEntry& audit) override;
  absl::Status AppendAudit(const clm::v1::AuditEntry& audit) override;
  absl::StatusOr<clm::v1::GetAuditResponse> ListAudit(uint32_t limit, uint64_t before_id) override;

 private:
  explicit SqliteDeploymentStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}
  absl::Status InsertAudit(const clm::v1::AuditEntry& audit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::unique_ptr<Database> db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clm::store

#endif  // CLM_LIB_STORE_SQLITE_DEPLOYMENT_STORE_H_
