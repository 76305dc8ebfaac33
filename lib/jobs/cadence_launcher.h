#ifndef CLM_LIB_JOBS_CADENCE_LAUNCHER_H_
#define CLM_LIB_JOBS_CADENCE_LAUNCHER_H_

#include <string>

#include "lib/cadence/interfaces.h"
#include "lib/jobs/job_manager.h"

namespace clm::jobs {

// What the cadence monitor's automatic modes do through the job system: submit a calibration over all
// trades (the same path as an operator's Submit, recorded as "cadence-monitor") and follow it.
//
// Approval into shadow belongs to the Deployment service. This build has none, so ApproveIntoShadow
// answers FAILED_PRECONDITION and the monitor records the decision as skipped with that reason: in
// AUTO_SHADOW the job is calibrated but left for an operator.
class CadenceLauncher final : public cadence::JobLauncher {
 public:
  explicit CadenceLauncher(JobManager* jobs) : jobs_(jobs) {}

  absl::StatusOr<std::string> SubmitCalibration(const std::string& reason) override;
  absl::StatusOr<cadence::JobStatus> GetJobStatus(const std::string& job_id) override;
  absl::Status ApproveIntoShadow(const std::string& job_id, const std::string& reason) override;

 private:
  JobManager* const jobs_;
};

}  // namespace clm::jobs

#endif  // CLM_LIB_JOBS_CADENCE_LAUNCHER_H_
