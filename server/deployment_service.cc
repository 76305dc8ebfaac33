#include "server/deployment_service.h"

#include <deque>
#include <utility>

#include "absl/time/clock.h"
#include "server/grpc_status.h"
#include "server/unary_call.h"

namespace clm::server {

using clm::v1::ActiveCalibration;

namespace {
constexpr size_t kMaxPending = 64;
}  // namespace

// Follows the active calibration: the current one at once, then every change, in order. Changes are rare
// (people approve and roll back), so they queue; should a client stop reading while more than
// kMaxPending changes pile up, the oldest unsent ones are dropped: what an engine needs is the newest.
class DeploymentService::WatchReactor final : public grpc::ServerWriteReactor<ActiveCalibration> {
 public:
  explicit WatchReactor(DeploymentService* service) : service_(service), start_(absl::Now()) {
    bool finishing;
    {
      absl::MutexLock lock(&service_->watches_mu_);
      finishing = service_->finishing_;
      if (!finishing) service_->watches_.insert(this);
    }
    deployment::DeploymentManager::Subscription subscription =
        service_->deployments_->Subscribe([this](const ActiveCalibration& active) { OnChange(active); });
    absl::MutexLock lock(&mu_);
    subscription_ = subscription.id;
    if (finishing) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
      return;
    }
    // Changes delivered since the subscription are newer than `current`: it goes first.
    pending_.push_front(std::move(subscription.current));
    MaybeWriteLocked();
  }

  // Ends the watch from outside gRPC's callbacks (shutdown).
  void End(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    FinishLocked(status);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading"));
      return;
    }
    MaybeWriteLocked();
  }

  void OnCancel() override { End(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the watch")); }

  void OnDone() override {
    // Unsubscribe waits out a running callback: nothing touches this object afterwards.
    service_->deployments_->Unsubscribe(subscription_);
    {
      absl::MutexLock lock(&service_->watches_mu_);
      service_->watches_.erase(this);
    }
    service_->watch_metrics_.Record(final_status_, absl::Now() - start_);
    delete this;
  }

 private:
  void OnChange(const ActiveCalibration& active) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    pending_.push_back(active);
    if (pending_.size() > kMaxPending) pending_.pop_front();
    MaybeWriteLocked();
  }

  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || pending_.empty()) return;
    current_ = std::move(pending_.front());
    pending_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    final_status_ = status;
    Finish(status);
  }

  DeploymentService* const service_;
  const absl::Time start_;
  absl::Mutex mu_;
  uint64_t subscription_ = 0;  // set in the constructor, read in OnDone
  std::deque<ActiveCalibration> pending_ ABSL_GUARDED_BY(mu_);
  ActiveCalibration current_;  // the message being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_;
};

DeploymentService::DeploymentService(deployment::DeploymentManager* deployments, ThreadPool* pool,
                                     Metrics* metrics, const Authenticator* auth)
    : deployments_(deployments),
      pool_(pool),
      auth_(auth),
      approve_metrics_(metrics->Method("/clm.v1.Deployment/Approve")),
      promote_metrics_(metrics->Method("/clm.v1.Deployment/Promote")),
      rollback_metrics_(metrics->Method("/clm.v1.Deployment/Rollback")),
      get_active_metrics_(metrics->Method("/clm.v1.Deployment/GetActive")),
      watch_metrics_(metrics->Method("/clm.v1.Deployment/WatchActive")),
      list_metrics_(metrics->Method("/clm.v1.Deployment/List")),
      audit_metrics_(metrics->Method("/clm.v1.Deployment/GetAudit")),
      calibrate_metrics_(metrics->Method("/clm.v1.Deployment/Calibrate")) {}

void DeploymentService::FinishWatches() {
  absl::MutexLock lock(&watches_mu_);
  finishing_ = true;
  for (WatchReactor* watch : watches_) {
    watch->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down; reconnect"));
  }
}

template <typename Request, typename Response, typename Apply>
grpc::ServerUnaryReactor* DeploymentService::Change(grpc::CallbackServerContext* context, const Request* request,
                                                    Response* response, MethodMetrics& metrics, Apply apply) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<auth::Principal> caller = Admit(*auth_, context, reactor, metrics);
  if (!caller.has_value()) return reactor;
  Request change = *request;
  change.set_approver(auth_->Actor(*caller, request->approver()));
  AnswerOnPool(pool_, context, reactor, metrics, response,
               [apply = std::move(apply), change = std::move(change)] { return apply(change); });
  return reactor;
}

grpc::ServerUnaryReactor* DeploymentService::Approve(grpc::CallbackServerContext* context,
                                                     const clm::v1::ApproveRequest* request,
                                                     clm::v1::DeploymentVersion* response) {
  return Change(context, request, response, approve_metrics_,
                [this](const clm::v1::ApproveRequest& change) { return deployments_->Approve(change); });
}

grpc::ServerUnaryReactor* DeploymentService::Promote(grpc::CallbackServerContext* context,
                                                     const clm::v1::PromoteRequest* request,
                                                     clm::v1::DeploymentVersion* response) {
  return Change(context, request, response, promote_metrics_,
                [this](const clm::v1::PromoteRequest& change) { return deployments_->Promote(change); });
}

grpc::ServerUnaryReactor* DeploymentService::Rollback(grpc::CallbackServerContext* context,
                                                      const clm::v1::RollbackRequest* request,
                                                      ActiveCalibration* response) {
  return Change(context, request, response, rollback_metrics_,
                [this](const clm::v1::RollbackRequest& change) { return deployments_->Rollback(change); });
}

grpc::ServerUnaryReactor* DeploymentService::GetActive(grpc::CallbackServerContext* context,
                                                       const clm::v1::GetActiveRequest* request,
                                                       ActiveCalibration* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(*auth_, context, reactor, get_active_metrics_)) return reactor;
  *response = deployments_->Active();
  FinishUnary(reactor, get_active_metrics_, start, grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<ActiveCalibration>* DeploymentService::WatchActive(
    grpc::CallbackServerContext* context, const clm::v1::WatchActiveRequest* request) {
  if (absl::StatusOr<auth::Principal> caller = auth_->Check(*context, watch_metrics_.method()); !caller.ok()) {
    return new RefusedWrite<ActiveCalibration>(watch_metrics_, ToGrpcStatus(caller.status()));
  }
  return new WatchReactor(this);
}

grpc::ServerUnaryReactor* DeploymentService::List(grpc::CallbackServerContext* context,
                                                  const clm::v1::ListDeploymentsRequest* request,
                                                  clm::v1::ListDeploymentsResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(*auth_, context, reactor, list_metrics_)) return reactor;
  *response = deployments_->List(*request);
  FinishUnary(reactor, list_metrics_, start, grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* DeploymentService::GetAudit(grpc::CallbackServerContext* context,
                                                      const clm::v1::GetAuditRequest* request,
                                                      clm::v1::GetAuditResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(*auth_, context, reactor, audit_metrics_)) return reactor;
  AnswerOnPool(pool_, context, reactor, audit_metrics_, response,
               [this, request] { return deployments_->Audit(request->limit(), request->before_id()); });
  return reactor;
}

grpc::ServerUnaryReactor* DeploymentService::Calibrate(grpc::CallbackServerContext* context,
                                                       const clm::v1::CalibrateRequest* request,
                                                       clm::v1::CalibrateResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(*auth_, context, reactor, calibrate_metrics_)) return reactor;
  absl::StatusOr<clm::v1::CalibrateResponse> calibrated = deployments_->Calibrate(*request);
  if (calibrated.ok()) *response = std::move(*calibrated);
  FinishUnary(reactor, calibrate_metrics_, start, ToGrpcStatus(calibrated.status()));
  return reactor;
}

}  // namespace clm::server
