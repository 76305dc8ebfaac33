#ifndef CLM_SERVER_HEALTH_PROBE_SERVICE_H_
#define CLM_SERVER_HEALTH_PROBE_SERVICE_H_

#include <map>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/health_check_service_interface.h"

namespace clm::server {

// grpc.health.v1.Health/Check for the plaintext probe port (--health_address), which serves nothing else.
// It mirrors the main port's status: the overall server ("") and each registered service name. Watch is
// left to the main port: probes (Kubernetes, grpc_health_probe) only call Check.
class HealthProbeService final : public grpc::health::v1::Health::CallbackService,
                                 public grpc::HealthCheckServiceInterface {
 public:
  // Every one of `services` starts NOT_SERVING, like the overall status.
  explicit HealthProbeService(const std::set<std::string>& services);

  // grpc::HealthCheckServiceInterface, so the probe port is set exactly like the main port's health service.
  void SetServingStatus(const std::string& service, bool serving) override;
  void SetServingStatus(bool serving) override;

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context, const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  absl::Mutex mu_;
  std::map<std::string, bool> serving_ ABSL_GUARDED_BY(mu_);  // "" is the overall status
};

}  // namespace clm::server

#endif  // CLM_SERVER_HEALTH_PROBE_SERVICE_H_
