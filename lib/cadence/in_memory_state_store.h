#ifndef CLM_LIB_CADENCE_IN_MEMORY_STATE_STORE_H_
#define CLM_LIB_CADENCE_IN_MEMORY_STATE_STORE_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "lib/cadence/interfaces.h"

namespace clm::cadence {

// CadenceStateStore in process memory: for tests and for running without a data directory. "Durable" means
// for the object's lifetime: a Monitor re-created over the same instance sees everything written before,
// which is how tests model a restart. Thread-safe.
class InMemoryCadenceStateStore final : public CadenceStateStore {
 public:
  InMemoryCadenceStateStore() = default;

  absl::Status AppendModeChange(const clm::v1::ModeChange& change) override;
  absl::StatusOr<std::vector<clm::v1::ModeChange>> LoadModeChanges(size_t limit) override;
  absl::Status AppendDecision(const clm::v1::MonitorDecision& decision) override;
  absl::StatusOr<std::vector<clm::v1::MonitorDecision>> LoadDecisions(size_t limit) override;
  absl::Status SavePendingJob(const std::string& job_id) override;
  absl::StatusOr<std::string> LoadPendingJob() override;

 private:
  absl::Mutex mu_;
  std::vector<clm::v1::ModeChange> mode_changes_ ABSL_GUARDED_BY(mu_);    // oldest first
  std::vector<clm::v1::MonitorDecision> decisions_ ABSL_GUARDED_BY(mu_);  // oldest first
  std::string pending_job_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clm::cadence

#endif  // CLM_LIB_CADENCE_IN_MEMORY_STATE_STORE_H_
