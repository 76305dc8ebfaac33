#ifndef CLM_SERVER_REFLECTION_SERVICE_H_
#define CLM_SERVER_REFLECTION_SERVICE_H_

#include <string>
#include <vector>

#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "server/auth.h"
#include "server/metrics.h"

namespace clm::server {

// grpc.reflection.v1alpha.ServerReflection, what grpcurl and other generic clients use to discover the API.
// Behaves like gRPC's own reflection plugin (answers from the generated descriptor pool, every transitive
// dependency of a file in the same response), but as a callback service that asks the Authenticator first:
// reflection is open to any authenticated principal, and to everyone when authentication is off.
class ReflectionService final : public grpc::reflection::v1alpha::ServerReflection::CallbackService {
 public:
  // `services`: the full names ListServices reports.
  ReflectionService(const Authenticator* auth, Metrics* metrics, std::vector<std::string> services);

  grpc::ServerBidiReactor<grpc::reflection::v1alpha::ServerReflectionRequest,
                          grpc::reflection::v1alpha::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext* context) override;

  // One answer (exposed for tests).
  grpc::reflection::v1alpha::ServerReflectionResponse Answer(
      const grpc::reflection::v1alpha::ServerReflectionRequest& request) const;

 private:
  class Reactor;
  const Authenticator* const auth_;
  const std::vector<std::string> services_;
  MethodMetrics& metrics_;
};

}  // namespace clm::server

#endif  // CLM_SERVER_REFLECTION_SERVICE_H_
