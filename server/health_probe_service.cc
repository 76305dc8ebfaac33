#include "server/health_probe_service.h"

#include "absl/strings/str_cat.h"

namespace clm::server {

using grpc::health::v1::HealthCheckResponse;

grpc::ServerUnaryReactor* HealthProbeService::Check(grpc::CallbackServerContext* context,
                                                    const grpc::health::v1::HealthCheckRequest* request,
                                                    HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!request->service().empty() && services_.count(request->service()) == 0) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("unknown service ", request->service())));
    return reactor;
  }
  response->set_status(serving_.load() ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING);
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
