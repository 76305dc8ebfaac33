#ifndef CLM_LIB_JOBS_JOB_STORE_H_
#define CLM_LIB_JOBS_JOB_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clm/v1/calibration_job.pb.h"

namespace clm::jobs {

// Durable storage of calibration jobs and their results.
//
// Contract: thread-safe; a write that returns OK is durable (committed) and visible to every later read,
// including after a restart. A job's result is stored only with its SUCCEEDED state, in the same
// transaction as the training record that the cadence triggers count from.
class JobStore {
 public:
  virtual ~JobStore() = default;

  // Inserts or replaces the job (its `result` field is ignored: see Complete).
  virtual absl::Status Put(const clm::v1::Job& job) = 0;

  // Stores the SUCCEEDED job with its result and records a training that saw trades up to `job.max_seq`.
  virtual absl::Status Complete(const clm::v1::Job& job) = 0;

  // NOT_FOUND when unknown. `with_result` loads the result too.
  virtual absl::StatusOr<clm::v1::Job> Get(const std::string& id, bool with_result) = 0;

  // Jobs newest first (by creation, then id), without results, optionally of one state, starting after the
  // job `after_id` (exclusive; empty: from the newest). At most `limit`.
  virtual absl::StatusOr<std::vector<clm::v1::Job>> List(clm::v1::JobState state, const std::string& after_id,
                                                         size_t limit) = 0;

  // Jobs in QUEUED or RUNNING state, oldest first: what a previous process left unfinished.
  virtual absl::StatusOr<std::vector<clm::v1::Job>> Unfinished() = 0;
};

}  // namespace clm::jobs

#endif  // CLM_LIB_JOBS_JOB_STORE_H_
