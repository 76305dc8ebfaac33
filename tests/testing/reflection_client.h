#ifndef CLM_TESTS_TESTING_REFLECTION_CLIENT_H_
#define CLM_TESTS_TESTING_REFLECTION_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor_database.h"
#include "grpcpp/channel.h"

namespace clm::testing {

// What grpcurl does, in-process: learns the server's API through server reflection (v1alpha, which grpc
// 1.51 serves) and calls methods with JSON requests, knowing nothing of CLM's protos at compile time.
// Tests use it to prove `grpcurl list`, `describe` and calls work against the real binary.
class ReflectionClient final {
 public:
  explicit ReflectionClient(std::shared_ptr<grpc::Channel> channel);

  // Like `grpcurl list`.
  absl::StatusOr<std::vector<std::string>> ListServices();

  // Like `grpcurl describe SYMBOL` for a service: fetches its file (and dependencies) by reflection.
  // NOT_FOUND when the server does not know the symbol ("Symbol not found" in grpcurl).
  absl::StatusOr<const google::protobuf::ServiceDescriptor*> DescribeService(const std::string& service);

  // Like `grpcurl -d JSON ADDR service/Method` for a unary method; returns the response as JSON.
  // Errors carry the call's gRPC status code and message.
  absl::StatusOr<std::string> CallUnary(const std::string& service, const std::string& method,
                                        const std::string& json_request);

  // Checks, without calling, that `json_request` is a valid request of the method (as grpcurl would parse
  // it before sending).
  absl::Status ValidateRequest(const std::string& service, const std::string& method,
                               const std::string& json_request);

  // Like `grpcurl -d @` for a streaming method (client, server or bidi streaming): sends every request,
  // half-closes, and collects the responses as JSON. A stream that does not end by itself (a watch) is
  // cancelled after `max_responses`, which then counts as success.
  absl::StatusOr<std::vector<std::string>> CallStream(const std::string& service, const std::string& method,
                                                      const std::vector<std::string>& json_requests,
                                                      size_t max_responses = SIZE_MAX);

 private:
  absl::Status FetchFileContainingSymbol(const std::string& symbol);
  absl::Status FetchFileByName(const std::string& filename);
  absl::Status AddFiles(const std::vector<std::string>& serialized_files);
  absl::StatusOr<const google::protobuf::MethodDescriptor*> FindMethod(const std::string& service,
                                                                       const std::string& method);

  std::shared_ptr<grpc::Channel> channel_;
  google::protobuf::SimpleDescriptorDatabase database_;
  std::unique_ptr<google::protobuf::DescriptorPool> pool_;
};

}  // namespace clm::testing

#endif  // CLM_TESTS_TESTING_REFLECTION_CLIENT_H_
