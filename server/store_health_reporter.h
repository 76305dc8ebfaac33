#ifndef CLM_SERVER_STORE_HEALTH_REPORTER_H_
#define CLM_SERVER_STORE_HEALTH_REPORTER_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/health_check_service_interface.h"
#include "lib/store/store_health.h"
#include "server/metrics.h"

namespace clm::server {

// Shows the store's health where operators and load balancers look: clm_store_errors_total{kind} and
// clm_store_healthy, the log, and the gRPC health service (the overall "" status and each CLM service's),
// which is NOT_SERVING while the store is unusable.
class StoreHealthReporter final : public store::StoreHealth::Observer {
 public:
  explicit StoreHealthReporter(Metrics* metrics) : metrics_(metrics) {}

  // From now on the health services (the main port's, and the probe port's if any) follow the store (and are
  // set at once). `services`: the full names of the registered services ("clm.v1.TradeIngest", ...), set next
  // to "".
  void AttachHealthService(std::vector<grpc::HealthCheckServiceInterface*> health, std::vector<std::string> services);
  // The health services are left alone from now on (shutdown sets them NOT_SERVING for good).
  void DetachHealthService();

  void OnStorageFault(store::StorageFault fault, const absl::Status& status) override;
  void OnUsableChanged(bool usable, const absl::Status& cause) override;

 private:
  void PublishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Metrics* const metrics_;
  absl::Mutex mu_;
  bool usable_ ABSL_GUARDED_BY(mu_) = true;
  std::vector<grpc::HealthCheckServiceInterface*> health_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> services_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clm::server

#endif  // CLM_SERVER_STORE_HEALTH_REPORTER_H_
