#ifndef CLM_LIB_JOBS_CADENCE_LAUNCHER_H_
#define CLM_LIB_JOBS_CADENCE_LAUNCHER_H_

#include <atomic>
#include <string>

#include "lib/cadence/interfaces.h"
#include "lib/deployment/deployment_manager.h"
#include "lib/jobs/job_manager.h"

namespace clm::jobs {

// What the cadence monitor's automatic modes do through the job system: submit a calibration over all
// trades (the same path as an operator's Submit, recorded as "cadence-monitor") and follow it.
//
// Approval into shadow goes through the deployment manager, with the same rules as an operator's Approve
// (recorded as "cadence-monitor"). The manager is created after the monitor (it reads the monitor's
// levels), so it is attached afterwards; until then ApproveIntoShadow answers UNAVAILABLE.
class CadenceLauncher final : public cadence::JobLauncher {
 public:
  explicit CadenceLauncher(JobManager* jobs) : jobs_(jobs) {}

  void SetDeployment(deployment::DeploymentManager* deployments) { deployments_.store(deployments); }

  absl::StatusOr<std::string> SubmitCalibration(const std::string& reason) override;
  absl::StatusOr<cadence::JobStatus> GetJobStatus(const std::string& job_id) override;
  absl::Status ApproveIntoShadow(const std::string& job_id, const std::string& reason) override;

 private:
  JobManager* const jobs_;
  std::atomic<deployment::DeploymentManager*> deployments_{nullptr};
};

}  // namespace clm::jobs

#endif  // CLM_LIB_JOBS_CADENCE_LAUNCHER_H_
