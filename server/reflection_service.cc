#include "server/reflection_service.h"

#include <unordered_set>
#include <utility>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "server/grpc_status.h"

namespace clm::server {

using grpc::reflection::v1alpha::ServerReflectionRequest;
using grpc::reflection::v1alpha::ServerReflectionResponse;
namespace protobuf = google::protobuf;

namespace {

constexpr char kMethod[] = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

// Adds `file` and, once each, every file it depends on.
void AddFile(const protobuf::FileDescriptor* file, ServerReflectionResponse& response,
             std::unordered_set<std::string>& seen) {
  if (!seen.insert(file->name()).second) return;
  protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  response.mutable_file_descriptor_response()->add_file_descriptor_proto(proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) AddFile(file->dependency(i), response, seen);
}

void SetError(ServerReflectionResponse& response, grpc::StatusCode code, const std::string& message) {
  response.mutable_error_response()->set_error_code(code);
  response.mutable_error_response()->set_error_message(message);
}

}  // namespace

// Reads one request, writes its answer, reads the next, until the client half-closes.
class ReflectionService::Reactor final
    : public grpc::ServerBidiReactor<ServerReflectionRequest, ServerReflectionResponse> {
 public:
  explicit Reactor(const ReflectionService* service) : service_(service) { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    response_ = service_->Answer(request_);
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading"));
      return;
    }
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  const ReflectionService* const service_;
  ServerReflectionRequest request_;
  ServerReflectionResponse response_;
};

ReflectionService::ReflectionService(const Authenticator* auth, Metrics* metrics, std::vector<std::string> services)
    : auth_(auth), services_(std::move(services)), metrics_(metrics->Method(kMethod)) {}

grpc::ServerBidiReactor<ServerReflectionRequest, ServerReflectionResponse>* ReflectionService::ServerReflectionInfo(
    grpc::CallbackServerContext* context) {
  if (absl::StatusOr<auth::Principal> caller = auth_->Check(*context, kMethod); !caller.ok()) {
    return new RefusedBidi<ServerReflectionRequest, ServerReflectionResponse>(metrics_, ToGrpcStatus(caller.status()));
  }
  return new Reactor(this);
}

ServerReflectionResponse ReflectionService::Answer(const ServerReflectionRequest& request) const {
  const protobuf::DescriptorPool* pool = protobuf::DescriptorPool::generated_pool();
  ServerReflectionResponse response;
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  std::unordered_set<std::string> seen;
  switch (request.message_request_case()) {
    case ServerReflectionRequest::kListServices:
      for (const std::string& name : services_) {
        response.mutable_list_services_response()->add_service()->set_name(name);
      }
      break;
    case ServerReflectionRequest::kFileByFilename:
      if (const protobuf::FileDescriptor* file = pool->FindFileByName(request.file_by_filename())) {
        AddFile(file, response, seen);
      } else {
        SetError(response, grpc::StatusCode::NOT_FOUND, "File not found.");
      }
      break;
    case ServerReflectionRequest::kFileContainingSymbol:
      if (const protobuf::FileDescriptor* file = pool->FindFileContainingSymbol(request.file_containing_symbol())) {
        AddFile(file, response, seen);
      } else {
        SetError(response, grpc::StatusCode::NOT_FOUND, "Symbol not found.");
      }
      break;
    case ServerReflectionRequest::kFileContainingExtension: {
      const protobuf::Descriptor* type =
          pool->FindMessageTypeByName(request.file_containing_extension().containing_type());
      const protobuf::FieldDescriptor* extension =
          type == nullptr ? nullptr
                          : pool->FindExtensionByNumber(type, request.file_containing_extension().extension_number());
      if (extension != nullptr) {
        AddFile(extension->file(), response, seen);
      } else {
        SetError(response, grpc::StatusCode::NOT_FOUND, type == nullptr ? "Type not found." : "Extension not found.");
      }
      break;
    }
    case ServerReflectionRequest::kAllExtensionNumbersOfType:
      if (const protobuf::Descriptor* type = pool->FindMessageTypeByName(request.all_extension_numbers_of_type())) {
        std::vector<const protobuf::FieldDescriptor*> extensions;
        pool->FindAllExtensions(type, &extensions);
        auto* numbers = response.mutable_all_extension_numbers_response();
        numbers->set_base_type_name(request.all_extension_numbers_of_type());
        for (const protobuf::FieldDescriptor* extension : extensions) numbers->add_extension_number(extension->number());
      } else {
        SetError(response, grpc::StatusCode::NOT_FOUND, "Type not found.");
      }
      break;
    default:
      SetError(response, grpc::StatusCode::UNIMPLEMENTED, "unknown reflection request");
      break;
  }
  return response;
}

}  // namespace clm::server
