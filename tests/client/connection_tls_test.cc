// The engine library's connection options against a server with TLS, mutual TLS and tokens.
#include <fstream>

#include "absl/strings/str_cat.h"
#include "client/lib/connection.h"
#include "clm/v1/deployment.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/auth/credentials.h"
#include "lib/config/config.h"
#include "server/server.h"
#include "tests/testing/test_pki.h"
#include "tests/testing/test_util.h"

namespace clm {
namespace {

constexpr char kToken[] = "engine-token-for-the-client-library";

class ConnectionTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<clm::testing::TestPki> pki = clm::testing::MakeTestPki(pki_dir_.path());
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    tokens_ = pki_dir_.path() + "/tokens";
    std::ofstream(tokens_) << "token " << auth::Sha256Hex(kToken) << " engine-eu-9 engine\n"
                           << "cert engine-eu-1 engine-eu-1 engine\n";
  }

  void Start(bool mutual) {
    server::Server::Options options;
    options.grpc_address = "127.0.0.1:0";
    options.metrics_address = "";
    options.data_dir = data_dir_.path();
    options.config = *config::ResolveServerConfig({});
    options.auth_tokens = tokens_;
    options.tls.cert_file = pki_.server_cert;
    options.tls.key_file = pki_.server_key;
    if (mutual) options.tls.client_ca_file = pki_.ca_cert;
    absl::StatusOr<std::unique_ptr<server::Server>> server = server::Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  grpc::StatusCode GetActive(const client::ConnectionOptions& connection) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = client::MakeChannel(connection);
    EXPECT_TRUE(channel.ok()) << channel.status();
    if (!channel.ok()) return grpc::StatusCode::INTERNAL;
    auto stub = clm::v1::Deployment::NewStub(*channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    client::ApplyMetadata(client::CallMetadata(connection), &context);
    clm::v1::ActiveCalibration active;
    return stub->GetActive(&context, {}, &active).error_code();
  }

  client::ConnectionOptions Options() const {
    client::ConnectionOptions connection;
    connection.target = absl::StrCat("127.0.0.1:", server_->grpc_port());
    connection.tls_ca_file = pki_.ca_cert;
    return connection;
  }

  clm::testing::TempDir pki_dir_;
  clm::testing::TempDir data_dir_;
  clm::testing::TestPki pki_;
  std::string tokens_;
  std::unique_ptr<server::Server> server_;
};

TEST_F(ConnectionTlsTest, TlsWithATokenFromTheOptions) {
  Start(false);
  client::ConnectionOptions connection = Options();
  EXPECT_EQ(GetActive(connection), grpc::StatusCode::UNAUTHENTICATED);
  connection.token = kToken;
  EXPECT_EQ(GetActive(connection), grpc::StatusCode::OK);
  // The wrong roots: the server is not trusted.
  connection.tls_ca_file = pki_.foreign_ca_cert;
  EXPECT_EQ(GetActive(connection), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(ConnectionTlsTest, MutualTlsWithTheEnginesCertificate) {
  Start(true);
  client::ConnectionOptions connection = Options();
  connection.tls_cert_file = pki_.engine_cert;
  connection.tls_key_file = pki_.engine_key;
  EXPECT_EQ(GetActive(connection), grpc::StatusCode::OK);
  connection.tls_cert_file = pki_.foreign_cert;
  connection.tls_key_file = pki_.foreign_key;
  EXPECT_EQ(GetActive(connection), grpc::StatusCode::UNAVAILABLE);
  connection.tls_key_file.clear();
  EXPECT_FALSE(client::MakeChannel(connection).ok());
}

}  // namespace
}  // namespace clm
