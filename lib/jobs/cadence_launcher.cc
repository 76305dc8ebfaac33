#include "lib/jobs/cadence_launcher.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace clm::jobs {

absl::StatusOr<std::string> CadenceLauncher::SubmitCalibration(const std::string& reason) {
  clm::v1::SubmitJobRequest request;
  request.set_submitted_by("cadence-monitor");
  request.set_reason(reason);
  absl::StatusOr<clm::v1::Job> job = jobs_->Submit(request);
  if (!job.ok()) return job.status();
  return job->id();
}

absl::StatusOr<cadence::JobStatus> CadenceLauncher::GetJobStatus(const std::string& job_id) {
  absl::StatusOr<clm::v1::Job> job = jobs_->Get(job_id, true);
  if (!job.ok()) return job.status();
  cadence::JobStatus status;
  switch (job->state()) {
    case clm::v1::QUEUED:
      status.state = cadence::JobStatus::State::kQueued;
      break;
    case clm::v1::RUNNING:
      status.state = cadence::JobStatus::State::kRunning;
      break;
    case clm::v1::SUCCEEDED:
      status.state = cadence::JobStatus::State::kSucceeded;
      status.deployment_ready = job->result().safety().deployment_ready();
      if (!status.deployment_ready) {
        status.message = absl::StrCat("safety validation: ", absl::StrJoin(job->result().safety().errors(), "; "));
      }
      break;
    default:
      status.state = cadence::JobStatus::State::kFailed;
      status.message = absl::StrCat(clm::v1::JobState_Name(job->state()), ": ", job->error());
  }
  return status;
}

absl::Status CadenceLauncher::ApproveIntoShadow(const std::string& job_id, const std::string& reason) {
  deployment::DeploymentManager* deployments = deployments_.load();
  if (deployments == nullptr) return absl::UnavailableError("the deployment manager is not running yet");
  clm::v1::ApproveRequest request;
  request.set_job_id(job_id);
  request.set_stage(clm::v1::STAGE_SHADOW);
  request.set_approver("cadence-monitor");
  request.set_reason(reason.empty() ? "AUTO_SHADOW: the job passed safety validation" : reason);
  return deployments->Approve(request).status();
}

}  // namespace clm::jobs
