// The real clm-server binary with authentication on: tokens never reach its log or its metrics, SIGHUP
// reloads the credentials file, and a non-loopback address without TLS and authentication is refused at
// start (or served with a loud warning when the operator insists).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clm/v1/deployment.grpc.pb.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lib/auth/credentials.h"
#include "tests/testing/test_pki.h"
#include "tests/testing/test_util.h"

namespace clm {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kOperatorToken[] = "op-7f3e9a1c5b2d4e6f8a0b1c2d3e4f5a6b";
constexpr char kEngineToken[] = "en-0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d";
constexpr char kWrongToken[] = "wr-1111222233334444555566667777aaaa";
constexpr char kLaterToken[] = "la-9999888877776666555544443333bbbb";

// GET http://127.0.0.1:port/path, the body ("" on failure).
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[65536];
      ssize_t n;
      while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, static_cast<size_t>(n));
    }
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

class AuthProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_ = dir_.path() + "/tokens";
    std::ofstream(tokens_) << "token " << auth::Sha256Hex(kOperatorToken) << " alice operator\n"
                           << "token " << auth::Sha256Hex(kEngineToken) << " engine-eu-1 engine\n";
    log_ = dir_.path() + "/server.log";
  }

  // Starts the binary with authentication, trace logging and a metrics endpoint.
  void Start() {
    grpc_port_ = clm::testing::PickFreePort();
    metrics_port_ = clm::testing::PickFreePort();
    server_ = std::make_unique<clm::testing::ChildProcess>(
        std::vector<std::string>{CLM_SERVER_BINARY, absl::StrCat("--grpc_address=127.0.0.1:", grpc_port_),
                                 absl::StrCat("--metrics_address=127.0.0.1:", metrics_port_),
                                 "--data_dir=" + dir_.path() + "/data", "--auth_tokens=" + tokens_,
                                 "--log_level=trace"},
        log_);
    ASSERT_TRUE(clm::testing::WaitForServing(absl::StrCat("127.0.0.1:", grpc_port_), absl::Seconds(20)));
  }

  grpc::StatusCode GetActive(const std::string& token) {
    auto stub = clm::v1::Deployment::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_port_), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    clm::v1::ActiveCalibration active;
    return stub->GetActive(&context, {}, &active).error_code();
  }

  clm::testing::TempDir dir_;
  std::string tokens_;
  std::string log_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
  std::unique_ptr<clm::testing::ChildProcess> server_;
};

TEST_F(AuthProcessTest, TokensNeverAppearInLogsOrMetrics) {
  Start();
  EXPECT_EQ(GetActive(kOperatorToken), grpc::StatusCode::OK);
  EXPECT_EQ(GetActive(kEngineToken), grpc::StatusCode::OK);
  EXPECT_EQ(GetActive(kWrongToken), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(GetActive(""), grpc::StatusCode::UNAUTHENTICATED);
  {
    // A refused write, and an accepted one, with the token on the stream.
    auto ingest = clm::v1::TradeIngest::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_port_), grpc::InsecureChannelCredentials()));
    for (const char* token : {kWrongToken, kEngineToken}) {
      grpc::ClientContext context;
      context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
      clm::v1::RecordRequest record;
      record.set_batch_id(7);
      *record.add_trades() = clm::testing::MakeTrade("leak-check-1");
      clm::v1::IngestAck ack;
      ingest->Record(&context, record, &ack);
    }
  }
  const std::string metrics = HttpGet(metrics_port_, "/metrics");
  // The refusals are counted (two GetActive, one Record), in the series every call is counted in.
  ASSERT_THAT(metrics, HasSubstr("clm_auth_enabled 1"));
  EXPECT_THAT(metrics, HasSubstr("clm_grpc_requests_total{code=\"UNAUTHENTICATED\",method=\"/clm.v1.Deployment/GetActive\"} 2"));
  EXPECT_THAT(metrics, HasSubstr("clm_grpc_requests_total{code=\"UNAUTHENTICATED\",method=\"/clm.v1.TradeIngest/Record\"} 1"));

  server_->Signal(SIGTERM);
  EXPECT_EQ(server_->Wait(), 0);
  const std::string log = clm::testing::ReadFileOrEmpty(log_);
  ASSERT_THAT(log, HasSubstr("authentication on"));  // the log was written, at trace level
  for (const std::string& secret : {std::string(kOperatorToken), std::string(kEngineToken), std::string(kWrongToken)}) {
    EXPECT_THAT(log, Not(HasSubstr(secret))) << "the log holds a token";
    EXPECT_THAT(metrics, Not(HasSubstr(secret))) << "/metrics holds a token";
    // Nor any recognisable piece of one.
    EXPECT_THAT(log, Not(HasSubstr(secret.substr(3, 12))));
  }
}

TEST_F(AuthProcessTest, SighupReloadsTheCredentialsFile) {
  Start();
  EXPECT_EQ(GetActive(kLaterToken), grpc::StatusCode::UNAUTHENTICATED);
  std::ofstream(tokens_, std::ios::app) << "token " << auth::Sha256Hex(kLaterToken) << " lara viewer\n";
  server_->Signal(SIGHUP);
  grpc::StatusCode code = grpc::StatusCode::UNAUTHENTICATED;
  for (absl::Time end = absl::Now() + absl::Seconds(10); absl::Now() < end && code != grpc::StatusCode::OK;
       absl::SleepFor(absl::Milliseconds(50))) {
    code = GetActive(kLaterToken);
  }
  EXPECT_EQ(code, grpc::StatusCode::OK);
  // A broken file on the next SIGHUP: the server keeps serving with what it had, and says why.
  std::ofstream(tokens_, std::ios::app) << "token oops\n";
  server_->Signal(SIGHUP);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(GetActive(kLaterToken), grpc::StatusCode::OK);
  EXPECT_EQ(GetActive(kOperatorToken), grpc::StatusCode::OK);
  server_->Signal(SIGTERM);
  EXPECT_EQ(server_->Wait(), 0);
  const std::string log = clm::testing::ReadFileOrEmpty(log_);
  EXPECT_THAT(log, HasSubstr("credentials reloaded: 3 tokens"));
  EXPECT_THAT(log, HasSubstr("the previous credentials stay in use"));
}

TEST_F(AuthProcessTest, ARemoteAddressWithoutProtectionIsRefusedAtStart) {
  const int port = clm::testing::PickFreePort();
  clm::testing::ChildProcess refused({CLM_SERVER_BINARY, absl::StrCat("--grpc_address=0.0.0.0:", port),
                                      "--metrics_address=", "--data_dir=" + dir_.path() + "/refused"},
                                     log_);
  EXPECT_EQ(refused.Wait(), 1);
  EXPECT_THAT(clm::testing::ReadFileOrEmpty(log_), HasSubstr("--allow_insecure_remote"));

  const std::string insecure_log = dir_.path() + "/insecure.log";
  clm::testing::ChildProcess insecure({CLM_SERVER_BINARY, absl::StrCat("--grpc_address=0.0.0.0:", port),
                                       "--metrics_address=", "--data_dir=" + dir_.path() + "/insecure",
                                       "--allow_insecure_remote"},
                                      insecure_log);
  ASSERT_TRUE(clm::testing::WaitForServing(absl::StrCat("127.0.0.1:", port), absl::Seconds(20)));
  insecure.Signal(SIGTERM);
  EXPECT_EQ(insecure.Wait(), 0);
  EXPECT_THAT(clm::testing::ReadFileOrEmpty(insecure_log), HasSubstr("INSECURE: serving 0.0.0.0:"));
}

}  // namespace
}  // namespace clm
