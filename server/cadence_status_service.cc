#include "server/cadence_status_service.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "lib/ingest/validation.h"
#include "server/grpc_status.h"
#include "server/unary_call.h"

namespace clm::server {
namespace {

using clm::v1::CadenceReport;

constexpr uint32_t kDefaultHistoryLimit = 100;
constexpr uint32_t kMaxHistoryLimit = 1000;

absl::Status CheckScope(const clm::v1::GetStatusRequest& request) {
  // The same bounds ingest enforces: a longer value cannot match a stored trade.
  if (request.symbol().size() > ingest::kMaxSymbolBytes) {
    return absl::InvalidArgumentError(absl::StrCat("symbol: must be at most ", ingest::kMaxSymbolBytes,
                                                   " bytes, got ", request.symbol().size()));
  }
  if (request.model_id().size() > ingest::kMaxModelIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("model_id: must be at most ", ingest::kMaxModelIdBytes,
                                                   " bytes, got ", request.model_id().size()));
  }
  return absl::OkStatus();
}

}  // namespace

// One WatchStatus stream.
//
// Threads: OnReport runs on the monitor thread (inside its publish, holding the monitor's subscriber lock);
// OnWriteDone, OnCancel and OnDone on gRPC's; Shutdown on the thread stopping the server. All of them only
// take mu_ briefly, so none blocks.
//
// Lifetime: OnDone unsubscribes before deleting the reactor. Monitor::Unsubscribe returns only once no
// callback is running and none will run again, so OnReport never touches a deleted reactor. OnReport never
// unsubscribes itself (that would deadlock on the monitor's subscriber lock).
class CadenceStatusService::WatchReactor final : public grpc::ServerWriteReactor<CadenceReport> {
 public:
  explicit WatchReactor(CadenceStatusService* service) : service_(service), start_(absl::Now()) {
    bool finishing = false;
    {
      absl::MutexLock lock(&service_->watches_mu_);
      service_->watches_.insert(this);
      finishing = service_->finishing_;
    }
    if (finishing) {
      Shutdown();
      return;
    }
    // Not under mu_: OnReport takes mu_ while the monitor holds its subscriber lock, so taking them in the
    // other order here could deadlock. When the published report does not cover every trade acknowledged
    // before this call, `current` is empty and the first OnReport brings one that does.
    cadence::Monitor::Subscription subscription =
        service_->monitor_->Subscribe([this](const CadenceReport& report) { OnReport(report); });
    absl::MutexLock lock(&mu_);
    subscription_ = subscription.id;
    // A report delivered since Subscribe returned is newer than `current`: keep it.
    if (!pending_.has_value() && !written_any_ && subscription.current.has_value()) {
      pending_ = std::move(subscription.current);
    }
    MaybeWriteLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped receiving reports"));
      return;
    }
    if (finish_wanted_.has_value()) {
      FinishLocked(*finish_wanted_);
      return;
    }
    MaybeWriteLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the watch"));
  }

  void OnDone() override {
    uint64_t subscription = 0;
    {
      absl::MutexLock lock(&mu_);
      subscription = subscription_;
    }
    if (subscription != 0) service_->monitor_->Unsubscribe(subscription);
    {
      absl::MutexLock lock(&service_->watches_mu_);
      service_->watches_.erase(this);
    }
    service_->watch_status_metrics_.Record(final_status_, absl::Now() - start_);
    delete this;
  }

  // The server is going away: end the stream so the client reconnects elsewhere or later.
  void Shutdown() {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down; watch again"));
  }

 private:
  void OnReport(const CadenceReport& report) {
    absl::MutexLock lock(&mu_);
    if (finished_ || finish_wanted_.has_value()) return;
    pending_ = report;  // replaces an unsent older one: only the newest matters
    MaybeWriteLocked();
  }

  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || finish_wanted_.has_value() || !pending_.has_value()) return;
    in_flight_ = std::move(*pending_);
    pending_.reset();
    writing_ = true;
    written_any_ = true;
    StartWrite(&in_flight_);
  }

  // Finish once, and only with no write in flight (its OnWriteDone finishes instead).
  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    pending_.reset();
    if (writing_) {
      if (!finish_wanted_.has_value()) finish_wanted_ = status;
      return;
    }
    finished_ = true;
    final_status_ = status;
    Finish(status);
  }

  CadenceStatusService* const service_;
  const absl::Time start_;

  absl::Mutex mu_;
  uint64_t subscription_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<CadenceReport> pending_ ABSL_GUARDED_BY(mu_);  // the newest report not yet written
  CadenceReport in_flight_;  // owned by the write in flight; touched only with writing_ false, under mu_
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool written_any_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_wanted_ ABSL_GUARDED_BY(mu_);
  grpc::Status final_status_;  // written before Finish, read in OnDone
};

CadenceStatusService::CadenceStatusService(cadence::Monitor* monitor, Metrics* metrics, const Authenticator* auth)
    : monitor_(monitor),
      auth_(auth),
      get_status_metrics_(metrics->Method("/clm.v1.CadenceStatus/GetStatus")),
      watch_status_metrics_(metrics->Method("/clm.v1.CadenceStatus/WatchStatus")),
      get_policy_metrics_(metrics->Method("/clm.v1.CadenceStatus/GetPolicy")),
      set_mode_metrics_(metrics->Method("/clm.v1.CadenceStatus/SetMode")),
      history_metrics_(metrics->Method("/clm.v1.CadenceStatus/GetMonitorHistory")) {}

void CadenceStatusService::FinishWatches() {
  absl::MutexLock lock(&watches_mu_);
  finishing_ = true;
  // A reactor leaves the set in OnDone, under this lock, before it is deleted: every one here is alive.
  for (WatchReactor* watch : watches_) watch->Shutdown();
}

grpc::ServerUnaryReactor* CadenceStatusService::GetStatus(grpc::CallbackServerContext* context,
                                                          const clm::v1::GetStatusRequest* request,
                                                          CadenceReport* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(*auth_, context, reactor, get_status_metrics_)) return reactor;
  if (absl::Status valid = CheckScope(*request); !valid.ok()) {
    FinishUnary(reactor, get_status_metrics_, start, ToGrpcStatus(valid));
    return reactor;
  }
  if (request->symbol().empty() && request->model_id().empty()) {
    // The monitor's published report, the one WatchStatus shows, once it covers every trade acknowledged
    // before this call: at once when it does, else from the monitor thread when it has evaluated.
    monitor_->FreshReportAsync([this, reactor, response, start](absl::StatusOr<CadenceReport> report) {
      if (report.ok()) *response = *std::move(report);
      FinishUnary(reactor, get_status_metrics_, start, ToGrpcStatus(report.status()));
    });
    return reactor;
  }
  monitor_->EvaluateScopeAsync(cadence::Scope{request->symbol(), request->model_id()},
                               [this, reactor, response, start](absl::StatusOr<CadenceReport> report) {
                                 if (report.ok()) *response = *std::move(report);
                                 FinishUnary(reactor, get_status_metrics_, start, ToGrpcStatus(report.status()));
                               });
  return reactor;
}

grpc::ServerWriteReactor<CadenceReport>* CadenceStatusService::WatchStatus(
    grpc::CallbackServerContext* context, const clm::v1::WatchStatusRequest* request) {
  if (absl::StatusOr<auth::Principal> caller = auth_->Check(*context, watch_status_metrics_.method()); !caller.ok()) {
    return new RefusedWrite<CadenceReport>(watch_status_metrics_, ToGrpcStatus(caller.status()));
  }
  return new WatchReactor(this);
}

grpc::ServerUnaryReactor* CadenceStatusService::GetPolicy(grpc::CallbackServerContext* context,
                                                          const clm::v1::GetPolicyRequest* request,
                                                          clm::v1::GetPolicyResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(*auth_, context, reactor, get_policy_metrics_)) return reactor;
  *response->mutable_policy() = monitor_->policy();
  response->set_mode(monitor_->mode());
  if (std::optional<clm::v1::ModeChange> change = monitor_->last_mode_change(); change.has_value()) {
    *response->mutable_last_mode_change() = *std::move(change);
  }
  FinishUnary(reactor, get_policy_metrics_, start, grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* CadenceStatusService::SetMode(grpc::CallbackServerContext* context,
                                                        const clm::v1::SetModeRequest* request,
                                                        clm::v1::SetModeResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<auth::Principal> caller = Admit(*auth_, context, reactor, set_mode_metrics_);
  if (!caller.has_value()) return reactor;
  // The monitor validates (mode, changed_by, reason: each error names its field) and persists.
  // With authentication on, the change is recorded as the authenticated principal's, whatever was typed.
  monitor_->SetModeAsync(request->mode(), auth_->Actor(*caller, request->changed_by()), request->reason(),
                         [this, reactor, response, start](absl::StatusOr<clm::v1::ModeChange> change) {
                           if (change.ok()) *response->mutable_change() = *std::move(change);
                           FinishUnary(reactor, set_mode_metrics_, start, ToGrpcStatus(change.status()));
                         });
  return reactor;
}

grpc::ServerUnaryReactor* CadenceStatusService::GetMonitorHistory(grpc::CallbackServerContext* context,
                                                                  const clm::v1::GetMonitorHistoryRequest* request,
                                                                  clm::v1::GetMonitorHistoryResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(*auth_, context, reactor, history_metrics_)) return reactor;
  if (request->limit() > kMaxHistoryLimit) {
    FinishUnary(reactor, history_metrics_, start,
                grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             absl::StrCat("limit: must be at most ", kMaxHistoryLimit, ", got ", request->limit())));
    return reactor;
  }
  const uint32_t limit = request->limit() == 0 ? kDefaultHistoryLimit : request->limit();
  for (clm::v1::MonitorDecision& decision : monitor_->History(limit)) {
    *response->add_decisions() = std::move(decision);
  }
  FinishUnary(reactor, history_metrics_, start, grpc::Status::OK);
  return reactor;
}

}  // namespace clm::server
