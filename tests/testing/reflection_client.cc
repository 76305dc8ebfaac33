#include "tests/testing/reflection_client.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/client_callback.h"
#include "grpcpp/support/byte_buffer.h"

namespace clm::testing {
namespace {

using grpc::reflection::v1alpha::ServerReflection;
using grpc::reflection::v1alpha::ServerReflectionRequest;
using grpc::reflection::v1alpha::ServerReflectionResponse;

absl::StatusOr<ServerReflectionResponse> Ask(grpc::Channel* channel, const ServerReflectionRequest& request) {
  auto stub = ServerReflection::NewStub(std::shared_ptr<grpc::Channel>(channel, [](grpc::Channel*) {}));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&context);
  ServerReflectionResponse response;
  if (!stream->Write(request) || !stream->WritesDone() || !stream->Read(&response)) {
    grpc::Status status = stream->Finish();
    return absl::UnavailableError(absl::StrCat("reflection: ", status.error_message()));
  }
  // Finish only after the server's side is drained, as the sync API requires.
  ServerReflectionResponse extra;
  while (stream->Read(&extra)) {
  }
  grpc::Status status = stream->Finish();
  if (!status.ok()) return absl::UnavailableError(absl::StrCat("reflection: ", status.error_message()));
  if (response.has_error_response()) {
    return absl::Status(static_cast<absl::StatusCode>(response.error_response().error_code()),
                        response.error_response().error_message());
  }
  return response;
}

}  // namespace

ReflectionClient::ReflectionClient(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)), pool_(std::make_unique<google::protobuf::DescriptorPool>(&database_)) {}

absl::StatusOr<std::vector<std::string>> ReflectionClient::ListServices() {
  ServerReflectionRequest request;
  request.set_list_services("");
  absl::StatusOr<ServerReflectionResponse> response = Ask(channel_.get(), request);
  if (!response.ok()) return response.status();
  std::vector<std::string> names;
  for (const auto& service : response->list_services_response().service()) names.push_back(service.name());
  return names;
}

absl::Status ReflectionClient::AddFiles(const std::vector<std::string>& serialized_files) {
  for (const std::string& bytes : serialized_files) {
    google::protobuf::FileDescriptorProto file;
    if (!file.ParseFromString(bytes)) return absl::DataLossError("reflection returned an unreadable file");
    google::protobuf::FileDescriptorProto existing;
    if (database_.FindFileByName(file.name(), &existing)) continue;
    database_.Add(file);
    for (const std::string& dependency : file.dependency()) {
      if (!database_.FindFileByName(dependency, &existing)) {
        absl::Status status = FetchFileByName(dependency);
        if (!status.ok()) return status;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ReflectionClient::FetchFileContainingSymbol(const std::string& symbol) {
  ServerReflectionRequest request;
  request.set_file_containing_symbol(symbol);
  absl::StatusOr<ServerReflectionResponse> response = Ask(channel_.get(), request);
  if (!response.ok()) return response.status();
  const auto& files = response->file_descriptor_response().file_descriptor_proto();
  return AddFiles({files.begin(), files.end()});
}

absl::Status ReflectionClient::FetchFileByName(const std::string& filename) {
  ServerReflectionRequest request;
  request.set_file_by_filename(filename);
  absl::StatusOr<ServerReflectionResponse> response = Ask(channel_.get(), request);
  if (!response.ok()) return response.status();
  const auto& files = response->file_descriptor_response().file_descriptor_proto();
  return AddFiles({files.begin(), files.end()});
}

absl::StatusOr<const google::protobuf::ServiceDescriptor*> ReflectionClient::DescribeService(
    const std::string& service) {
  if (const auto* found = pool_->FindServiceByName(service)) return found;
  absl::Status status = FetchFileContainingSymbol(service);
  if (!status.ok()) return status;
  if (const auto* found = pool_->FindServiceByName(service)) return found;
  return absl::NotFoundError(absl::StrCat("Symbol not found: ", service));
}

absl::StatusOr<const google::protobuf::MethodDescriptor*> ReflectionClient::FindMethod(const std::string& service,
                                                                                     const std::string& method) {
  absl::StatusOr<const google::protobuf::ServiceDescriptor*> descriptor = DescribeService(service);
  if (!descriptor.ok()) return descriptor.status();
  const google::protobuf::MethodDescriptor* m = (*descriptor)->FindMethodByName(method);
  if (m == nullptr) return absl::NotFoundError(absl::StrCat(service, " has no method ", method));
  return m;
}

namespace {

// Drives one generic streaming call: writes the requests in order, half-closes, reads every response.
class StreamCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamCall(std::vector<grpc::ByteBuffer> requests, size_t max_responses, grpc::ClientContext* context)
      : requests_(std::move(requests)), max_responses_(max_responses), context_(context) {}

  void Go() {
    if (requests_.empty()) {
      StartWritesDone();
    } else {
      StartWrite(&requests_[0]);
    }
    StartRead(&incoming_);
    StartCall();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return;
    if (++next_ < requests_.size()) {
      StartWrite(&requests_[next_]);
    } else {
      StartWritesDone();
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    responses_.push_back(incoming_);
    if (responses_.size() >= max_responses_) {
      cancelled_by_us_ = true;
      context_->TryCancel();
      return;
    }
    StartRead(&incoming_);
  }

  void OnDone(const grpc::Status& status) override {
    status_ = status;
    done_.Notify();
  }

  grpc::Status Wait() {
    done_.WaitForNotification();
    return cancelled_by_us_ && status_.error_code() == grpc::StatusCode::CANCELLED ? grpc::Status::OK : status_;
  }
  const std::vector<grpc::ByteBuffer>& responses() const { return responses_; }

 private:
  std::vector<grpc::ByteBuffer> requests_;
  size_t next_ = 0;
  const size_t max_responses_;
  grpc::ClientContext* context_;
  grpc::ByteBuffer incoming_;
  std::vector<grpc::ByteBuffer> responses_;
  bool cancelled_by_us_ = false;
  grpc::Status status_;
  absl::Notification done_;
};

std::string ToBytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string out;
  for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReflectionClient::CallStream(const std::string& service,
                                                                      const std::string& method,
                                                                      const std::vector<std::string>& json_requests,
                                                                      size_t max_responses) {
  absl::StatusOr<const google::protobuf::MethodDescriptor*> m = FindMethod(service, method);
  if (!m.ok()) return m.status();
  google::protobuf::DynamicMessageFactory factory(pool_.get());
  std::vector<grpc::ByteBuffer> requests;
  for (const std::string& json : json_requests) {
    std::unique_ptr<google::protobuf::Message> request(factory.GetPrototype((*m)->input_type())->New());
    auto parsed = google::protobuf::util::JsonStringToMessage(json, request.get());
    if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat("request JSON: ", parsed.ToString()));
    grpc::Slice slice(request->SerializeAsString());
    requests.emplace_back(&slice, 1);
  }
  grpc::GenericStub stub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  StreamCall call(std::move(requests), max_responses, &context);
  stub.PrepareBidiStreamingCall(&context, absl::StrCat("/", service, "/", method), grpc::StubOptions(), &call);
  call.Go();
  grpc::Status status = call.Wait();
  if (!status.ok()) return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  std::vector<std::string> out;
  for (const grpc::ByteBuffer& buffer : call.responses()) {
    std::unique_ptr<google::protobuf::Message> response(factory.GetPrototype((*m)->output_type())->New());
    if (!response->ParseFromString(ToBytes(buffer))) return absl::DataLossError("unreadable response");
    std::string json;
    auto printed = google::protobuf::util::MessageToJsonString(*response, &json);
    if (!printed.ok()) return absl::InternalError(printed.ToString());
    out.push_back(std::move(json));
  }
  return out;
}

absl::Status ReflectionClient::ValidateRequest(const std::string& service, const std::string& method,
                                               const std::string& json_request) {
  absl::StatusOr<const google::protobuf::MethodDescriptor*> m = FindMethod(service, method);
  if (!m.ok()) return m.status();
  google::protobuf::DynamicMessageFactory factory(pool_.get());
  std::unique_ptr<google::protobuf::Message> request(factory.GetPrototype((*m)->input_type())->New());
  auto parsed = google::protobuf::util::JsonStringToMessage(json_request, request.get());
  if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat("request JSON: ", parsed.ToString()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReflectionClient::CallUnary(const std::string& service, const std::string& method,
                                                        const std::string& json_request) {
  absl::StatusOr<const google::protobuf::MethodDescriptor*> found = FindMethod(service, method);
  if (!found.ok()) return found.status();
  const google::protobuf::MethodDescriptor* m = *found;
  google::protobuf::DynamicMessageFactory factory(pool_.get());
  std::unique_ptr<google::protobuf::Message> request(factory.GetPrototype(m->input_type())->New());
  std::unique_ptr<google::protobuf::Message> response(factory.GetPrototype(m->output_type())->New());
  auto parsed = google::protobuf::util::JsonStringToMessage(json_request, request.get());
  if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat("request JSON: ", parsed.ToString()));

  std::string bytes = request->SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  grpc::GenericStub stub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  absl::Notification done;
  grpc::Status call_status;
  stub.UnaryCall(&context, absl::StrCat("/", service, "/", method), grpc::StubOptions(), &request_buffer,
                 &response_buffer, [&](grpc::Status status) {
                   call_status = std::move(status);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!call_status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(call_status.error_code()), call_status.error_message());
  }
  std::vector<grpc::Slice> slices;
  (void)response_buffer.Dump(&slices);
  std::string out;
  for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  if (!response->ParseFromString(out)) return absl::DataLossError("unreadable response");
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = false;
  auto printed = google::protobuf::util::MessageToJsonString(*response, &json, options);
  if (!printed.ok()) return absl::InternalError(printed.ToString());
  return json;
}

}  // namespace clm::testing
