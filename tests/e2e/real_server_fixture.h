#ifndef CLM_TESTS_E2E_REAL_SERVER_FIXTURE_H_
#define CLM_TESTS_E2E_REAL_SERVER_FIXTURE_H_

#include <memory>

#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/testing/reflection_client.h"
#include "tests/testing/test_util.h"

namespace clm::testing {

// The real clm-server binary on a fresh data directory, reached through a reflection-only client (what
// grpcurl does). Stopped with SIGTERM after each test, which must exit 0.
class RealServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(CLM_SERVER_BINARY, dir_.path());
    ASSERT_TRUE(server_->WaitUntilServing());
    client_ = std::make_unique<ReflectionClient>(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    client_.reset();  // disconnect first (see ServerProcess::Stop)
    EXPECT_EQ(server_->Stop(), 0);
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<ReflectionClient> client_;
};

}  // namespace clm::testing

#endif  // CLM_TESTS_E2E_REAL_SERVER_FIXTURE_H_
