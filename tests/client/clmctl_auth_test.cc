// clmctl with authentication: tokens made by `clmctl auth new-token` work against a server whose
// --auth_tokens file holds the printed lines; --token_file and CLM_TOKEN; --by falls to the principal.
#include <stdlib.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/clmctl/commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/auth/credentials.h"
#include "lib/config/config.h"
#include "server/server.h"
#include "tests/testing/test_util.h"

namespace clm {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

struct Result {
  int rc = -1;
  std::string out;
  std::string err;
};

Result Clmctl(const std::vector<std::string>& args, const std::string& input = "") {
  std::istringstream in(input);
  std::ostringstream out;
  std::ostringstream err;
  Result r;
  r.rc = clmctl::Run(args, in, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

// "token: T\nline:  L\n" -> {T, L}
std::pair<std::string, std::string> TokenAndLine(const std::string& out) {
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 2u) << out;
  if (lines.size() != 2) return {};
  return {lines[0].substr(std::string("token: ").size()), lines[1].substr(std::string("line:  ").size())};
}

TEST(ClmctlAuthTest, NewTokenAndHashTokenAgree) {
  Result made = Clmctl({"auth", "new-token", "alice", "--roles", "operator,viewer"});
  ASSERT_EQ(made.rc, 0) << made.err;
  auto [token, line] = TokenAndLine(made.out);
  EXPECT_THAT(token, MatchesRegex("[0-9a-f]{64}"));
  EXPECT_EQ(line, absl::StrCat("token ", auth::Sha256Hex(token), " alice operator,viewer"));
  EXPECT_THAT(made.err, HasSubstr("SIGHUP"));
  // The printed line is a valid credentials file.
  absl::StatusOr<auth::CredentialSet> set = auth::CredentialSet::Parse(line);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->FindToken(token)->name, "alice");

  Result hashed = Clmctl({"auth", "hash-token"}, token + "\n");
  ASSERT_EQ(hashed.rc, 0) << hashed.err;
  EXPECT_EQ(hashed.out, auth::Sha256Hex(token) + "\n");

  Result json = Clmctl({"--json", "auth", "new-token", "e1", "--roles", "engine"});
  ASSERT_EQ(json.rc, 0);
  EXPECT_THAT(json.out, MatchesRegex("\\{\"token\": \"[0-9a-f]{64}\", \"line\": \"token [0-9a-f]{64} e1 engine\"\\}\n"));
}

TEST(ClmctlAuthTest, BadArgumentsAreUsageErrors) {
  Result role = Clmctl({"auth", "new-token", "alice", "--roles", "admin"});
  EXPECT_EQ(role.rc, 2);
  EXPECT_THAT(role.err, HasSubstr("--roles: \"admin\" is not engine, operator or viewer"));
  EXPECT_EQ(Clmctl({"auth", "new-token", "alice"}).rc, 2);
  EXPECT_EQ(Clmctl({"auth", "new-token", "al ice", "--roles", "viewer"}).rc, 2);
  EXPECT_EQ(Clmctl({"auth", "hash-token"}, "").rc, 2);
}

class ClmctlAuthServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result alice = Clmctl({"auth", "new-token", "alice", "--roles", "operator"});
    Result vic = Clmctl({"auth", "new-token", "vic", "--roles", "viewer"});
    ASSERT_EQ(alice.rc, 0);
    ASSERT_EQ(vic.rc, 0);
    std::string alice_line, vic_line;
    std::tie(operator_token_, alice_line) = TokenAndLine(alice.out);
    std::tie(viewer_token_, vic_line) = TokenAndLine(vic.out);
    const std::string tokens = dir_.path() + "/tokens";
    std::ofstream(tokens) << alice_line << "\n" << vic_line << "\n";
    token_file_ = dir_.path() + "/alice.token";
    std::ofstream(token_file_) << operator_token_ << "\n";

    server::Server::Options options;
    options.grpc_address = "127.0.0.1:0";
    options.metrics_address = "";
    options.data_dir = dir_.path() + "/data";
    options.config = *config::ResolveServerConfig({});
    options.auth_tokens = tokens;
    absl::StatusOr<std::unique_ptr<server::Server>> server = server::Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    server_flag_ = absl::StrCat("--server=127.0.0.1:", server_->grpc_port());
  }
  void TearDown() override { unsetenv("CLM_TOKEN"); }

  clm::testing::TempDir dir_;
  std::unique_ptr<server::Server> server_;
  std::string server_flag_, operator_token_, viewer_token_, token_file_;
};

TEST_F(ClmctlAuthServerTest, TokensFromFlagFileOrEnvironment) {
  Result anonymous = Clmctl({server_flag_, "status"});
  EXPECT_EQ(anonymous.rc, 1);
  EXPECT_THAT(anonymous.err, HasSubstr("UNAUTHENTICATED"));

  // From a file, and without --by: the server records the token's principal.
  Result set = Clmctl({server_flag_, "--token_file", token_file_, "mode", "set", "auto_calibrate", "--reason", "r"});
  ASSERT_EQ(set.rc, 0) << set.err;
  EXPECT_THAT(set.out, HasSubstr("alice"));

  // From the environment: a viewer may read, not change.
  setenv("CLM_TOKEN", viewer_token_.c_str(), 1);
  EXPECT_EQ(Clmctl({server_flag_, "status"}).rc, 0);
  Result denied = Clmctl({server_flag_, "mode", "set", "logging_only", "--reason", "r"});
  EXPECT_EQ(denied.rc, 1);
  EXPECT_THAT(denied.err, HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(denied.err, HasSubstr("principal \"vic\""));

  // The flag wins over the environment.
  EXPECT_EQ(Clmctl({server_flag_, "--token", operator_token_, "mode", "set", "logging_only", "--reason", "r"}).rc, 0);

  Result missing = Clmctl({server_flag_, "--token_file", dir_.path() + "/nope", "status"});
  EXPECT_EQ(missing.rc, 2);
  EXPECT_THAT(missing.err, HasSubstr("--token_file"));
}

}  // namespace
}  // namespace clm
