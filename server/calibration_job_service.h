#ifndef CLM_SERVER_CALIBRATION_JOB_SERVICE_H_
#define CLM_SERVER_CALIBRATION_JOB_SERVICE_H_

#include "clm/v1/calibration_job.grpc.pb.h"
#include "lib/common/thread_pool.h"
#include "lib/jobs/job_manager.h"
#include "server/auth.h"
#include "server/metrics.h"

namespace clm::server {

// clm.v1.CalibrationJob over the callback API. Every handler hands its store I/O to the query pool; Watch
// follows the job manager's notifications and writes the latest state, one write at a time.
class CalibrationJobService final : public clm::v1::CalibrationJob::CallbackService {
 public:
  CalibrationJobService(jobs::JobManager* jobs, ThreadPool* pool, Metrics* metrics, const Authenticator* auth);

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* context, const clm::v1::SubmitJobRequest* request,
                                   clm::v1::Job* response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context, const clm::v1::GetJobRequest* request,
                                clm::v1::Job* response) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context, const clm::v1::ListJobsRequest* request,
                                 clm::v1::ListJobsResponse* response) override;
  grpc::ServerWriteReactor<clm::v1::Job>* Watch(grpc::CallbackServerContext* context,
                                                const clm::v1::WatchJobRequest* request) override;
  grpc::ServerUnaryReactor* Cancel(grpc::CallbackServerContext* context, const clm::v1::CancelJobRequest* request,
                                   clm::v1::Job* response) override;
  grpc::ServerUnaryReactor* GetReport(grpc::CallbackServerContext* context, const clm::v1::GetReportRequest* request,
                                      clm::v1::JobReport* response) override;

 private:
  class WatchReactor;

  jobs::JobManager* const jobs_;
  ThreadPool* const pool_;
  const Authenticator* const auth_;
  MethodMetrics& submit_metrics_;
  MethodMetrics& get_metrics_;
  MethodMetrics& list_metrics_;
  MethodMetrics& watch_metrics_;
  MethodMetrics& cancel_metrics_;
  MethodMetrics& report_metrics_;
};

}  // namespace clm::server

#endif  // CLM_SERVER_CALIBRATION_JOB_SERVICE_H_
