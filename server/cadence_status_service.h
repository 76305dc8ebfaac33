#ifndef CLM_SERVER_CADENCE_STATUS_SERVICE_H_
#define CLM_SERVER_CADENCE_STATUS_SERVICE_H_

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "clm/v1/cadence.grpc.pb.h"
#include "lib/cadence/monitor.h"
#include "server/auth.h"
#include "server/metrics.h"

namespace clm::server {

// clm.v1.CadenceStatus over the callback API, a thin adapter over cadence::Monitor. Handlers never block:
// the all-trades report, the policy, the mode and the history are in-memory copies; scoped evaluations and
// mode changes (SQLite) run on the monitor's thread and finish the call from there.
//
// WatchStatus sends the current report at once (as soon as the monitor has evaluated once), then every
// changed one. One write is in flight per stream; reports arriving meanwhile replace each other, so a slow
// watcher receives the newest report when it catches up and costs at most one pending report of memory.
//
// The monitor must outlive the service and every call it serves (stop the gRPC server first).
class CadenceStatusService final : public clm::v1::CadenceStatus::CallbackService {
 public:
  CadenceStatusService(cadence::Monitor* monitor, Metrics* metrics, const Authenticator* auth);

  // Ends every open WatchStatus stream with UNAVAILABLE (the server is going away; clients reconnect), and
  // every stream opened later at once. Called once, at shutdown, before grpc::Server::Shutdown, so open
  // watches do not hold the shutdown for its whole grace period. Non-blocking.
  void FinishWatches();

  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const clm::v1::GetStatusRequest* request,
                                      clm::v1::CadenceReport* response) override;
  grpc::ServerWriteReactor<clm::v1::CadenceReport>* WatchStatus(
      grpc::CallbackServerContext* context, const clm::v1::WatchStatusRequest* request) override;
  grpc::ServerUnaryReactor* GetPolicy(grpc::CallbackServerContext* context,
                                      const clm::v1::GetPolicyRequest* request,
                                      clm::v1::GetPolicyResponse* response) override;
  grpc::ServerUnaryReactor* SetMode(grpc::CallbackServerContext* context, const clm::v1::SetModeRequest* request,
                                    clm::v1::SetModeResponse* response) override;
  grpc::ServerUnaryReactor* GetMonitorHistory(grpc::CallbackServerContext* context,
                                              const clm::v1::GetMonitorHistoryRequest* request,
                                              clm::v1::GetMonitorHistoryResponse* response) override;

 private:
  class WatchReactor;

  cadence::Monitor* const monitor_;
  const Authenticator* const auth_;
  absl::Mutex watches_mu_;
  absl::flat_hash_set<WatchReactor*> watches_ ABSL_GUARDED_BY(watches_mu_);
  bool finishing_ ABSL_GUARDED_BY(watches_mu_) = false;
  MethodMetrics& get_status_metrics_;
  MethodMetrics& watch_status_metrics_;
  MethodMetrics& get_policy_metrics_;
  MethodMetrics& set_mode_metrics_;
  MethodMetrics& history_metrics_;
};

}  // namespace clm::server

#endif  // CLM_SERVER_CADENCE_STATUS_SERVICE_H_
