#ifndef CLM_LIB_STORE_SQLITE_JOB_STORE_H_
#define CLM_LIB_STORE_SQLITE_JOB_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "lib/jobs/job_store.h"
#include "lib/store/sqlite.h"

namespace clm::store {

// JobStore on the embedded SQLite database (tables jobs and trainings). One connection under a mutex: job
// writes are rare (a few per job), reads are small.
class SqliteJobStore final : public jobs::JobStore {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteJobStore>> Open(const std::string& path,
                                                              const StoreOptions& options = {});

  absl::Status Put(const clm::v1::Job& job) override;
  absl::Status Complete(const clm::v1::Job& job) override;
  absl::StatusOr<clm::v1::Job> Get(const std::string& id, bool with_result) override;
  absl::StatusOr<std::vector<clm::v1::Job>> List(clm::v1::JobState state, const std::string& after_id,
                                                 size_t limit) override;
  absl::StatusOr<std::vector<clm::v1::Job>> Unfinished() override;

 private:
  explicit SqliteJobStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}
  absl::Status PutLocked(const clm::v1::Job& job, const std::string* result) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::unique_ptr<Database> db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clm::store

#endif  // CLM_LIB_STORE_SQLITE_JOB_STORE_H_
