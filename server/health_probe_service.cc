#include "server/health_probe_service.h"

#include <optional>

#include "absl/strings/str_cat.h"

namespace clm::server {

using grpc::health::v1::HealthCheckResponse;

HealthProbeService::HealthProbeService(const std::set<std::string>& services) {
  serving_[""] = false;
  for (const std::string& service : services) serving_[service] = false;
}

void HealthProbeService::SetServingStatus(const std::string& service, bool serving) {
  absl::MutexLock lock(&mu_);
  serving_[service] = serving;
}

void HealthProbeService::SetServingStatus(bool serving) {
  absl::MutexLock lock(&mu_);
  for (auto& [service, status] : serving_) status = serving;
}

grpc::ServerUnaryReactor* HealthProbeService::Check(grpc::CallbackServerContext* context,
                                                    const grpc::health::v1::HealthCheckRequest* request,
                                                    HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<bool> serving;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = serving_.find(request->service()); it != serving_.end()) serving = it->second;
  }
  if (!serving.has_value()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("unknown service ", request->service())));
    return reactor;
  }
  response->set_status(*serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthProbeService::Watch(
    grpc::CallbackServerContext* context, const grpc::health::v1::HealthCheckRequest* request) {
  class Unimplemented final : public grpc::ServerWriteReactor<HealthCheckResponse> {
   public:
    Unimplemented() {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                          "the probe port answers Check only; Watch is served on the main gRPC port"));
    }
    void OnDone() override { delete this; }
  };
  return new Unimplemented();
}

}  // namespace clm::server
