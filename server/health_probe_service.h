#ifndef CLM_SERVER_HEALTH_PROBE_SERVICE_H_
#define CLM_SERVER_HEALTH_PROBE_SERVICE_H_

#include <atomic>
#include <set>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"

namespace clm::server {

// grpc.health.v1.Health/Check for the plaintext probe port (--health_address), which serves nothing else.
// It mirrors the main port's status: the overall server ("") and each registered service name. Watch is
// left to the main port: probes (Kubernetes, grpc_health_probe) only call Check.
class HealthProbeService final : public grpc::health::v1::Health::CallbackService {
 public:
  explicit HealthProbeService(std::set<std::string> services) : services_(std::move(services)) {}

  void SetServing(bool serving) { serving_.store(serving); }

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context, const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  const std::set<std::string> services_;
  std::atomic<bool> serving_{false};
};

}  // namespace clm::server

#endif  // CLM_SERVER_HEALTH_PROBE_SERVICE_H_
