// Authentication and authorization over real gRPC on 127.0.0.1: the role matrix (every method x no token,
// wrong token, each role) in plaintext and over TLS, mutual TLS, the principal recorded for changes, and the
// start-up refusals (insecure remote address, bad TLS files).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clm/v1/cadence.grpc.pb.h"
#include "clm/v1/calibration_job.grpc.pb.h"
#include "clm/v1/deployment.grpc.pb.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "lib/auth/credentials.h"
#include "lib/config/config.h"
#include "server/server.h"
#include "tests/testing/test_pki.h"
#include "tests/testing/test_util.h"

namespace clm::server {
namespace {

using ::testing::HasSubstr;

// Tokens of the three roles, as a client holds them; the server's file holds only their SHA-256.
constexpr char kEngineToken[] = "engine-token-6f1c";
constexpr char kOperatorToken[] = "operator-token-93ab";
constexpr char kViewerToken[] = "viewer-token-0d27";

std::string CredentialsFile() {
  return absl::StrCat("# test credentials\n",                                                  //
                      "token ", auth::Sha256Hex(kEngineToken), " engine-eu-1 engine\n",        //
                      "token ", auth::Sha256Hex(kOperatorToken), " alice operator\n",          //
                      "token ", auth::Sha256Hex(kViewerToken), " vic viewer\n",                //
                      "cert engine-eu-1 engine-eu-1 engine\n");
}

// Who may call each method, written from the issue (not from the server's table): engine = TradeIngest,
// GetActive, WatchActive, Calibrate; viewer = the read-only calls; operator = everything; reflection = any role.
const std::map<std::string, std::set<std::string>>& Expected() {
  static const auto* expected = new std::map<std::string, std::set<std::string>>{
      {"/clm.v1.TradeIngest/Ingest", {"engine", "operator"}},
      {"/clm.v1.TradeIngest/Record", {"engine", "operator"}},
      {"/clm.v1.TradeIngest/GetDatasetSummary", {"engine", "operator", "viewer"}},
      {"/clm.v1.TradeIngest/ListDeadLetters", {"engine", "operator", "viewer"}},
      {"/clm.v1.CadenceStatus/GetStatus", {"operator", "viewer"}},
      {"/clm.v1.CadenceStatus/WatchStatus", {"operator", "viewer"}},
      {"/clm.v1.CadenceStatus/GetPolicy", {"operator", "viewer"}},
      {"/clm.v1.CadenceStatus/SetMode", {"operator"}},
      {"/clm.v1.CadenceStatus/GetMonitorHistory", {"operator", "viewer"}},
      {"/clm.v1.CalibrationJob/Submit", {"operator"}},
      {"/clm.v1.CalibrationJob/Get", {"operator", "viewer"}},
      {"/clm.v1.CalibrationJob/List", {"operator", "viewer"}},
      {"/clm.v1.CalibrationJob/Watch", {"operator", "viewer"}},
      {"/clm.v1.CalibrationJob/Cancel", {"operator"}},
      {"/clm.v1.CalibrationJob/GetReport", {"operator", "viewer"}},
      {"/clm.v1.Deployment/Approve", {"operator"}},
      {"/clm.v1.Deployment/Promote", {"operator"}},
      {"/clm.v1.Deployment/Rollback", {"operator"}},
      {"/clm.v1.Deployment/GetActive", {"engine", "operator", "viewer"}},
      {"/clm.v1.Deployment/WatchActive", {"engine", "operator", "viewer"}},
      {"/clm.v1.Deployment/List", {"operator", "viewer"}},
      {"/clm.v1.Deployment/GetAudit", {"operator", "viewer"}},
      {"/clm.v1.Deployment/Calibrate", {"engine", "operator", "viewer"}},
      {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", {"engine", "operator", "viewer"}},
  };
  return *expected;
}

using Call = std::function<grpc::Status(grpc::ClientContext*)>;

// One call of every method, with a minimal request. Streams are opened, their first message (if any) read,
// then cancelled: what matters here is whether the server let the call in.
std::map<std::string, Call> EveryMethod(const std::shared_ptr<grpc::Channel>& channel) {
  auto ingest = std::shared_ptr(clm::v1::TradeIngest::NewStub(channel));
  auto cadence = std::shared_ptr(clm::v1::CadenceStatus::NewStub(channel));
  auto jobs = std::shared_ptr(clm::v1::CalibrationJob::NewStub(channel));
  auto deployment = std::shared_ptr(clm::v1::Deployment::NewStub(channel));
  auto reflection = std::shared_ptr(grpc::reflection::v1alpha::ServerReflection::NewStub(channel));
  auto unary = [](auto stub, auto method, auto request, auto response) -> Call {
    return [stub, method, request, response](grpc::ClientContext* context) mutable {
      return ((*stub).*method)(context, request, &response);
    };
  };
  std::map<std::string, Call> calls;
  calls["/clm.v1.TradeIngest/Ingest"] = [ingest](grpc::ClientContext* context) {
    auto stream = ingest->Ingest(context);
    stream->WritesDone();
    clm::v1::IngestAck ack;
    while (stream->Read(&ack)) {
    }
    return stream->Finish();
  };
  clm::v1::RecordRequest record;
  record.set_batch_id(1);
  *record.add_trades() = clm::testing::MakeTrade("matrix-1");
  calls["/clm.v1.TradeIngest/Record"] =
      unary(ingest, &clm::v1::TradeIngest::Stub::Record, record, clm::v1::IngestAck());
  calls["/clm.v1.TradeIngest/GetDatasetSummary"] =
      unary(ingest, &clm::v1::TradeIngest::Stub::GetDatasetSummary, clm::v1::GetDatasetSummaryRequest(),
            clm::v1::DatasetSummary());
  calls["/clm.v1.TradeIngest/ListDeadLetters"] =
      unary(ingest, &clm::v1::TradeIngest::Stub::ListDeadLetters, clm::v1::ListDeadLettersRequest(),
            clm::v1::ListDeadLettersResponse());
  calls["/clm.v1.CadenceStatus/GetStatus"] =
      unary(cadence, &clm::v1::CadenceStatus::Stub::GetStatus, clm::v1::GetStatusRequest(), clm::v1::CadenceReport());
  calls["/clm.v1.CadenceStatus/WatchStatus"] = [cadence](grpc::ClientContext* context) {
    auto reader = cadence->WatchStatus(context, clm::v1::WatchStatusRequest());
    clm::v1::CadenceReport report;
    if (reader->Read(&report)) context->TryCancel();
    return reader->Finish();
  };
  calls["/clm.v1.CadenceStatus/GetPolicy"] = unary(cadence, &clm::v1::CadenceStatus::Stub::GetPolicy,
                                                   clm::v1::GetPolicyRequest(), clm::v1::GetPolicyResponse());
  clm::v1::SetModeRequest set_mode;  // LOGGING_ONLY again: allowed, and changes nothing that matters here
  set_mode.set_mode(clm::v1::LOGGING_ONLY);
  set_mode.set_changed_by("matrix");
  set_mode.set_reason("role matrix");
  calls["/clm.v1.CadenceStatus/SetMode"] =
      unary(cadence, &clm::v1::CadenceStatus::Stub::SetMode, set_mode, clm::v1::SetModeResponse());
  calls["/clm.v1.CadenceStatus/GetMonitorHistory"] =
      unary(cadence, &clm::v1::CadenceStatus::Stub::GetMonitorHistory, clm::v1::GetMonitorHistoryRequest(),
            clm::v1::GetMonitorHistoryResponse());
  calls["/clm.v1.CalibrationJob/Submit"] =
      unary(jobs, &clm::v1::CalibrationJob::Stub::Submit, clm::v1::SubmitJobRequest(), clm::v1::Job());
  calls["/clm.v1.CalibrationJob/Get"] =
      unary(jobs, &clm::v1::CalibrationJob::Stub::Get, clm::v1::GetJobRequest(), clm::v1::Job());
  calls["/clm.v1.CalibrationJob/List"] =
      unary(jobs, &clm::v1::CalibrationJob::Stub::List, clm::v1::ListJobsRequest(), clm::v1::ListJobsResponse());
  calls["/clm.v1.CalibrationJob/Watch"] = [jobs](grpc::ClientContext* context) {
    auto reader = jobs->Watch(context, clm::v1::WatchJobRequest());
    clm::v1::Job job;
    if (reader->Read(&job)) context->TryCancel();
    return reader->Finish();
  };
  calls["/clm.v1.CalibrationJob/Cancel"] =
      unary(jobs, &clm::v1::CalibrationJob::Stub::Cancel, clm::v1::CancelJobRequest(), clm::v1::Job());
  calls["/clm.v1.CalibrationJob/GetReport"] =
      unary(jobs, &clm::v1::CalibrationJob::Stub::GetReport, clm::v1::GetReportRequest(), clm::v1::JobReport());
  calls["/clm.v1.Deployment/Approve"] = unary(deployment, &clm::v1::Deployment::Stub::Approve,
                                              clm::v1::ApproveRequest(), clm::v1::DeploymentVersion());
  calls["/clm.v1.Deployment/Promote"] = unary(deployment, &clm::v1::Deployment::Stub::Promote,
                                              clm::v1::PromoteRequest(), clm::v1::DeploymentVersion());
  calls["/clm.v1.Deployment/Rollback"] = unary(deployment, &clm::v1::Deployment::Stub::Rollback,
                                               clm::v1::RollbackRequest(), clm::v1::ActiveCalibration());
  calls["/clm.v1.Deployment/GetActive"] = unary(deployment, &clm::v1::Deployment::Stub::GetActive,
                                                clm::v1::GetActiveRequest(), clm::v1::ActiveCalibration());
  calls["/clm.v1.Deployment/WatchActive"] = [deployment](grpc::ClientContext* context) {
    auto reader = deployment->WatchActive(context, clm::v1::WatchActiveRequest());
    clm::v1::ActiveCalibration active;
    if (reader->Read(&active)) context->TryCancel();
    return reader->Finish();
  };
  calls["/clm.v1.Deployment/List"] = unary(deployment, &clm::v1::Deployment::Stub::List,
                                           clm::v1::ListDeploymentsRequest(), clm::v1::ListDeploymentsResponse());
  calls["/clm.v1.Deployment/GetAudit"] =
      unary(deployment, &clm::v1::Deployment::Stub::GetAudit, clm::v1::GetAuditRequest(), clm::v1::GetAuditResponse());
  clm::v1::CalibrateRequest calibrate;
  calibrate.add_confidences(0.6);
  calls["/clm.v1.Deployment/Calibrate"] =
      unary(deployment, &clm::v1::Deployment::Stub::Calibrate, calibrate, clm::v1::CalibrateResponse());
  calls["/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"] = [reflection](grpc::ClientContext* context) {
    auto stream = reflection->ServerReflectionInfo(context);
    grpc::reflection::v1alpha::ServerReflectionRequest request;
    request.set_list_services("");
    stream->Write(request);
    stream->WritesDone();
    grpc::reflection::v1alpha::ServerReflectionResponse response;
    while (stream->Read(&response)) {
    }
    return stream->Finish();
  };
  return calls;
}

// Runs `call` with `token` ("" = no authorization metadata) and a deadline.
grpc::Status CallWith(const Call& call, const std::string& token) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  return call(&context);
}

bool Refused(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
         status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
}

class AuthServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<clm::testing::TestPki> pki = clm::testing::MakeTestPki(pki_dir_.path());
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    credentials_path_ = pki_dir_.path() + "/tokens";
    std::ofstream(credentials_path_) << CredentialsFile();
  }

  Server::Options BaseOptions() {
    Server::Options options;
    options.grpc_address = "127.0.0.1:0";
    options.metrics_address = "";
    options.data_dir = data_dir_.path();
    options.config = *config::ResolveServerConfig({});
    options.auth_tokens = credentials_path_;
    return options;
  }

  void Start(const Server::Options& options) {
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    target_ = absl::StrCat("127.0.0.1:", server_->grpc_port());
  }

  std::shared_ptr<grpc::Channel> TlsChannel(const std::string& cert = "", const std::string& key = "",
                                            const std::string& ca = "") {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = clm::testing::ReadFileOrEmpty(ca.empty() ? pki_.ca_cert : ca);
    if (!cert.empty()) {
      ssl.pem_cert_chain = clm::testing::ReadFileOrEmpty(cert);
      ssl.pem_private_key = clm::testing::ReadFileOrEmpty(key);
    }
    return grpc::CreateChannel(target_, grpc::SslCredentials(ssl));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  clm::testing::TempDir pki_dir_;
  clm::testing::TempDir data_dir_;
  clm::testing::TestPki pki_;
  std::string credentials_path_;
  std::unique_ptr<Server> server_;
  std::string target_;
};

// Every method of every service the server registers appears in the expectations, so a method added later
// cannot slip past the matrix.
TEST_F(AuthServerTest, TheMatrixCoversEveryMethod) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  std::set<std::string> methods;
  for (const char* service : {"clm.v1.TradeIngest", "clm.v1.CadenceStatus", "clm.v1.CalibrationJob",
                              "clm.v1.Deployment", "grpc.reflection.v1alpha.ServerReflection"}) {
    const google::protobuf::ServiceDescriptor* descriptor = pool->FindServiceByName(service);
    ASSERT_NE(descriptor, nullptr) << service;
    for (int i = 0; i < descriptor->method_count(); ++i) {
      methods.insert(absl::StrCat("/", service, "/", descriptor->method(i)->name()));
    }
  }
  std::set<std::string> expected;
  for (const auto& [method, roles] : Expected()) expected.insert(method);
  EXPECT_EQ(methods, expected);
  std::set<std::string> called;
  for (const auto& [method, call] : EveryMethod(grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()))) {
    called.insert(method);
  }
  EXPECT_EQ(called, expected);
}

void RunMatrix(const std::shared_ptr<grpc::Channel>& channel) {
  const std::map<std::string, std::string> roles = {
      {"engine", kEngineToken}, {"operator", kOperatorToken}, {"viewer", kViewerToken}};
  for (const auto& [method, call] : EveryMethod(channel)) {
    SCOPED_TRACE(method);
    grpc::Status none = CallWith(call, "");
    EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED) << "no token: " << none.error_message();
    grpc::Status wrong = CallWith(call, "not-a-token-anyone-has");
    EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED) << "wrong token: " << wrong.error_message();
    EXPECT_EQ(wrong.error_message(), "unknown bearer token");
    for (const auto& [role, token] : roles) {
      grpc::Status status = CallWith(call, token);
      if (Expected().at(method).count(role) > 0) {
        EXPECT_FALSE(Refused(status)) << role << " must be let in: " << status.error_message();
      } else {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << role << ": " << status.error_message();
        EXPECT_THAT(status.error_message(), HasSubstr(method));
      }
    }
  }
}

TEST_F(AuthServerTest, RoleMatrixOverPlaintextLoopback) {
  Start(BaseOptions());
  RunMatrix(grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
}

TEST_F(AuthServerTest, RoleMatrixOverTls) {
  Server::Options options = BaseOptions();
  options.tls.cert_file = pki_.server_cert;
  options.tls.key_file = pki_.server_key;
  Start(options);
  RunMatrix(TlsChannel());
  // A plaintext client cannot talk to the TLS port at all.
  auto plain = clm::v1::Deployment::NewStub(grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  clm::v1::ActiveCalibration active;
  EXPECT_EQ(plain->GetActive(&context, {}, &active).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(AuthServerTest, MalformedAuthorizationIsUnauthenticated) {
  Start(BaseOptions());
  auto stub = clm::v1::Deployment::NewStub(grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
  for (const std::string& header : {std::string("Basic YWxpY2U6cHc="), std::string("Bearer"),
                                    std::string(kOperatorToken)}) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", header);
    clm::v1::ActiveCalibration active;
    grpc::Status status = stub->GetActive(&context, {}, &active);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << header;
    EXPECT_THAT(status.error_message(), HasSubstr("Bearer <token>")) << header;
  }
  // The scheme is case-insensitive (RFC 7235).
  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("bearer ", kEngineToken));
  clm::v1::ActiveCalibration active;
  EXPECT_TRUE(stub->GetActive(&context, {}, &active).ok());
}

TEST_F(AuthServerTest, MutualTlsNamesThePrincipalByCertificate) {
  Server::Options options = BaseOptions();
  options.tls.cert_file = pki_.server_cert;
  options.tls.key_file = pki_.server_key;
  options.tls.client_ca_file = pki_.ca_cert;
  Start(options);

  // engine-eu-1's certificate, no token: the engine role.
  auto engine = clm::v1::Deployment::NewStub(TlsChannel(pki_.engine_cert, pki_.engine_key));
  {
    grpc::ClientContext context;
    clm::v1::ActiveCalibration active;
    EXPECT_TRUE(engine->GetActive(&context, {}, &active).ok());
  }
  {
    grpc::ClientContext context;
    clm::v1::ApproveRequest approve;
    clm::v1::DeploymentVersion version;
    grpc::Status status = engine->Approve(&context, approve, &version);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(status.error_message(), HasSubstr("principal \"engine-eu-1\" (roles: engine)"));
  }
  // A certificate our CA signed but without a cert entry: unauthenticated, unless it also sends a token.
  auto stranger = clm::v1::Deployment::NewStub(TlsChannel(pki_.stranger_cert, pki_.stranger_key));
  {
    grpc::ClientContext context;
    clm::v1::ActiveCalibration active;
    grpc::Status status = stranger->GetActive(&context, {}, &active);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(status.error_message(), HasSubstr("\"stranger\" has no cert entry"));
  }
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kViewerToken));
    clm::v1::ActiveCalibration active;
    EXPECT_TRUE(stranger->GetActive(&context, {}, &active).ok());
  }
  // A certificate from a foreign CA, even with the right name and a valid token, never gets a connection.
  auto foreign = clm::v1::Deployment::NewStub(TlsChannel(pki_.foreign_cert, pki_.foreign_key));
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kOperatorToken));
    clm::v1::ActiveCalibration active;
    EXPECT_EQ(foreign->GetActive(&context, {}, &active).error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  // Nor does a client without a certificate.
  auto anonymous = clm::v1::Deployment::NewStub(TlsChannel());
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kOperatorToken));
    clm::v1::ActiveCalibration active;
    EXPECT_EQ(anonymous->GetActive(&context, {}, &active).error_code(), grpc::StatusCode::UNAVAILABLE);
  }
}

// What is recorded as who did it is the authenticated principal, not the name typed into the request.
TEST_F(AuthServerTest, ChangesAreRecordedAsTheAuthenticatedPrincipal) {
  Start(BaseOptions());
  auto channel = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
  auto as_alice = [](grpc::ClientContext* context) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", kOperatorToken));
  };
  {
    auto cadence = clm::v1::CadenceStatus::NewStub(channel);
    grpc::ClientContext context;
    as_alice(&context);
    clm::v1::SetModeRequest request;
    request.set_mode(clm::v1::AUTO_CALIBRATE);
    request.set_changed_by("mallory");
    request.set_reason("testing who is recorded");
    clm::v1::SetModeResponse response;
    ASSERT_TRUE(cadence->SetMode(&context, request, &response).ok());
    EXPECT_EQ(response.change().changed_by(), "alice");
  }
  {
    auto jobs = clm::v1::CalibrationJob::NewStub(channel);
    grpc::ClientContext context;
    as_alice(&context);
    clm::v1::SubmitJobRequest request;
    request.set_submitted_by("mallory");
    clm::v1::Job job;
    ASSERT_TRUE(jobs->Submit(&context, request, &job).ok());
    EXPECT_EQ(job.request().submitted_by(), "alice");
  }
  {
    // Refused (nothing is in production), and audited with the principal as the actor.
    auto deployment = clm::v1::Deployment::NewStub(channel);
    grpc::ClientContext context;
    as_alice(&context);
    clm::v1::RollbackRequest request;
    request.set_approver("mallory");
    request.set_reason("testing who is recorded");
    request.set_to_identity(true);
    clm::v1::ActiveCalibration active;
    EXPECT_EQ(deployment->Rollback(&context, request, &active).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    grpc::ClientContext audit_context;
    as_alice(&audit_context);
    clm::v1::GetAuditResponse audit;
    ASSERT_TRUE(deployment->GetAudit(&audit_context, {}, &audit).ok());
    ASSERT_GE(audit.entries_size(), 1);
    EXPECT_EQ(audit.entries(0).actor(), "alice");
  }
}

TEST_F(AuthServerTest, ANonLoopbackAddressNeedsTlsAndAuthentication) {
  Server::Options options = BaseOptions();
  options.grpc_address = "0.0.0.0:0";
  options.auth_tokens.clear();
  absl::StatusOr<std::unique_ptr<Server>> refused = Server::Start(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("without TLS and authentication"));
  EXPECT_THAT(refused.status().message(), HasSubstr("--allow_insecure_remote"));

  // Tokens alone are not enough: they would cross the network in clear.
  options.auth_tokens = credentials_path_;
  refused = Server::Start(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("without TLS and authentication"));

  // TLS alone is not enough either.
  options.auth_tokens.clear();
  options.tls.cert_file = pki_.server_cert;
  options.tls.key_file = pki_.server_key;
  refused = Server::Start(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("without authentication"));

  // TLS and tokens: serves.
  options.auth_tokens = credentials_path_;
  Start(options);
  server_->Shutdown();
  server_.reset();

  // Or the operator accepts the risk explicitly.
  Server::Options insecure = BaseOptions();
  insecure.grpc_address = "0.0.0.0:0";
  insecure.auth_tokens.clear();
  insecure.allow_insecure_remote = true;
  Start(insecure);
}

TEST_F(AuthServerTest, BadTlsFilesAreRefusedAtStartNamingTheFlag) {
  struct Case {
    std::string cert, key, ca, error;
  };
  const std::string missing = pki_dir_.path() + "/missing.pem";
  for (const Case& c : std::vector<Case>{
           {pki_.server_cert, pki_.engine_key, "", "does not belong to the certificate in --tls_cert"},
           {pki_.server_cert, "", "", "--tls_cert and --tls_key"},
           {missing, pki_.server_key, "", "--tls_cert " + missing + ": cannot read"},
           {pki_.server_key, pki_.server_key, "", "not a PEM certificate"},
           {pki_.server_cert, pki_.server_cert, "", "--tls_key"},
           {pki_.server_cert, pki_.server_key, pki_.server_key, "--tls_client_ca"},
       }) {
    Server::Options options = BaseOptions();
    options.tls.cert_file = c.cert;
    options.tls.key_file = c.key;
    options.tls.client_ca_file = c.ca;
    absl::StatusOr<std::unique_ptr<Server>> refused = Server::Start(options);
    ASSERT_FALSE(refused.ok()) << c.error;
    EXPECT_THAT(refused.status().message(), HasSubstr(c.error));
  }
}

TEST_F(AuthServerTest, ABadCredentialsFileIsRefusedAtStartAndKeptOutOnReload) {
  Server::Options options = BaseOptions();
  const std::string bad = pki_dir_.path() + "/bad-tokens";
  std::ofstream(bad) << "token " << kOperatorToken << " alice operator\n";
  options.auth_tokens = bad;
  absl::StatusOr<std::unique_ptr<Server>> refused = Server::Start(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("--auth_tokens " + bad + ": line 1"));
  EXPECT_THAT(refused.status().message(), ::testing::Not(HasSubstr(kOperatorToken)));

  Start(BaseOptions());
  auto stub = clm::v1::Deployment::NewStub(grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
  auto get_active = [&stub](const std::string& token) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    clm::v1::ActiveCalibration active;
    return stub->GetActive(&context, {}, &active).error_code();
  };
  EXPECT_EQ(get_active("new-token"), grpc::StatusCode::UNAUTHENTICATED);
  // A new token appears after a reload; a broken file leaves the credentials in use alone.
  std::ofstream(credentials_path_, std::ios::app) << "token " << auth::Sha256Hex("new-token") << " nina viewer\n";
  ASSERT_TRUE(server_->Reload().ok());
  EXPECT_EQ(get_active("new-token"), grpc::StatusCode::OK);
  std::ofstream(credentials_path_, std::ios::app) << "token garbage nina viewer\n";
  absl::Status reload = server_->Reload();
  EXPECT_FALSE(reload.ok());
  EXPECT_THAT(reload.message(), HasSubstr("the previous credentials stay in use"));
  EXPECT_EQ(get_active("new-token"), grpc::StatusCode::OK);
  EXPECT_EQ(get_active(kEngineToken), grpc::StatusCode::OK);
}

// The server's certificate files are watched: replacing them takes effect for new connections without a
// restart (certificate rotation).
TEST_F(AuthServerTest, ServerCertificateRotationNeedsNoRestart) {
  const std::string cert = pki_dir_.path() + "/live.pem";
  const std::string key = pki_dir_.path() + "/live.key";
  std::filesystem::copy_file(pki_.server_cert, cert);
  std::filesystem::copy_file(pki_.server_key, key);
  Server::Options options = BaseOptions();
  options.tls.cert_file = cert;
  options.tls.key_file = key;
  options.tls.reload_interval = absl::Seconds(1);
  Start(options);

  // The name in the certificate the server presented to a fresh connection.
  auto served_name = [this]() -> std::string {
    grpc::ChannelArguments fresh;
    fresh.SetInt("clm.test.unique", static_cast<int>(absl::ToUnixNanos(absl::Now()) % 1000000007));
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = clm::testing::ReadFileOrEmpty(pki_.ca_cert);
    auto stub = clm::v1::Deployment::NewStub(grpc::CreateCustomChannel(target_, grpc::SslCredentials(ssl), fresh));
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kEngineToken));
    clm::v1::ActiveCalibration active;
    if (!stub->GetActive(&context, {}, &active).ok()) return "";
    std::vector<grpc::string_ref> names = context.auth_context()->FindPropertyValues("x509_common_name");
    return names.empty() ? "" : std::string(names[0].data(), names[0].size());
  };
  EXPECT_EQ(served_name(), "clm-server-a");
  // Key first, then certificate, each replaced atomically (rename), as rotation tools do.
  std::filesystem::copy_file(pki_.rotated_key, key + ".new");
  std::filesystem::copy_file(pki_.rotated_server_cert, cert + ".new");
  std::filesystem::rename(key + ".new", key);
  std::filesystem::rename(cert + ".new", cert);
  std::string name;
  for (absl::Time end = absl::Now() + absl::Seconds(15); absl::Now() < end; absl::SleepFor(absl::Milliseconds(200))) {
    name = served_name();
    if (name == "clm-server-b") break;
  }
  EXPECT_EQ(name, "clm-server-b");
}

}  // namespace
}  // namespace clm::server

namespace clm::server {
namespace {

// Kubernetes' gRPC probes cannot speak TLS: the plaintext probe port answers health, and nothing else.
TEST_F(AuthServerTest, ThePlaintextProbePortServesOnlyHealth) {
  Server::Options options = BaseOptions();
  options.tls.cert_file = pki_.server_cert;
  options.tls.key_file = pki_.server_key;
  options.health_address = "127.0.0.1:0";
  Start(options);
  ASSERT_NE(server_->health_port(), 0);
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->health_port()),
                                     grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  for (const std::string& service : {std::string(""), std::string("clm.v1.TradeIngest")}) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, request, &response).ok()) << service;
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service("clm.v1.Nothing");
    grpc::health::v1::HealthCheckResponse response;
    EXPECT_EQ(health->Check(&context, request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // The API is not there, with or without a token.
  auto deployment = clm::v1::Deployment::NewStub(channel);
  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("Bearer ", kOperatorToken));
  clm::v1::ActiveCalibration active;
  EXPECT_EQ(deployment->GetActive(&context, {}, &active).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace clm::server
