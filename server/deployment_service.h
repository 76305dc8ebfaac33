#ifndef CLM_SERVER_DEPLOYMENT_SERVICE_H_
#define CLM_SERVER_DEPLOYMENT_SERVICE_H_

#include <set>

#include "absl/synchronization/mutex.h"
#include "clm/v1/deployment.grpc.pb.h"
#include "lib/common/thread_pool.h"
#include "lib/deployment/deployment_manager.h"
#include "server/auth.h"
#include "server/metrics.h"

namespace clm::server {

// clm.v1.Deployment over the callback API. Changes (approve, promote, rollback) and the audit go through
// the query pool (they write the store); GetActive, List and Calibrate answer from memory on the gRPC
// thread; WatchActive writes every change in order, one write at a time.
class DeploymentService final : public clm::v1::Deployment::CallbackService {
 public:
  DeploymentService(deployment::DeploymentManager* deployments, ThreadPool* pool, Metrics* metrics,
                    const Authenticator* auth);

  // Ends every open WatchActive with UNAVAILABLE (shutdown), so the engines reconnect elsewhere.
  void FinishWatches();

  grpc::ServerUnaryReactor* Approve(grpc::CallbackServerContext* context, const clm::v1::ApproveRequest* request,
                                    clm::v1::DeploymentVersion* response) override;
  grpc::ServerUnaryReactor* Promote(grpc::CallbackServerContext* context, const clm::v1::PromoteRequest* request,
                                    clm::v1::DeploymentVersion* response) override;
  grpc::ServerUnaryReactor* Rollback(grpc::CallbackServerContext* context, const clm::v1::RollbackRequest* request,
                                     clm::v1::ActiveCalibration* response) override;
  grpc::ServerUnaryReactor* GetActive(grpc::CallbackServerContext* context, const clm::v1::GetActiveRequest* request,
                                      clm::v1::ActiveCalibration* response) override;
  grpc::ServerWriteReactor<clm::v1::ActiveCalibration>* WatchActive(
      grpc::CallbackServerContext* context, const clm::v1::WatchActiveRequest* request) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const clm::v1::ListDeploymentsRequest* request,
                                 clm::v1::ListDeploymentsResponse* response) override;
  grpc::ServerUnaryReactor* GetAudit(grpc::CallbackServerContext* context, const clm::v1::GetAuditRequest* request,
                                     clm::v1::GetAuditResponse* response) override;
  grpc::ServerUnaryReactor* Calibrate(grpc::CallbackServerContext* context, const clm::v1::CalibrateRequest* request,
                                      clm::v1::CalibrateResponse* response) override;

 private:
  class WatchReactor;

  // Approve, Promote and Rollback: an operator's change, applied off gRPC's threads, recorded under the
  // authenticated principal's name when authentication is on (else the approver typed in the request).
  template <typename Request, typename Response, typename Apply>
  grpc::ServerUnaryReactor* Change(grpc::CallbackServerContext* context, const Request* request, Response* response,
                                   MethodMetrics& metrics, Apply apply);

  deployment::DeploymentManager* const deployments_;
  ThreadPool* const pool_;
  const Authenticator* const auth_;
  MethodMetrics& approve_metrics_;
  MethodMetrics& promote_metrics_;
  MethodMetrics& rollback_metrics_;
  MethodMetrics& get_active_metrics_;
  MethodMetrics& watch_metrics_;
  MethodMetrics& list_metrics_;
  MethodMetrics& audit_metrics_;
  MethodMetrics& calibrate_metrics_;
  absl::Mutex watches_mu_;
  std::set<WatchReactor*> watches_ ABSL_GUARDED_BY(watches_mu_);
  bool finishing_ ABSL_GUARDED_BY(watches_mu_) = false;
};

}  // namespace clm::server

#endif  // CLM_SERVER_DEPLOYMENT_SERVICE_H_
