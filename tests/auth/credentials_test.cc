#include "lib/auth/credentials.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clm::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(Sha256HexTest, MatchesTheStandardTestVectors) {
  // FIPS 180-2 examples.
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(NewTokenTest, IsLongRandomAndHex) {
  absl::StatusOr<std::string> a = NewToken();
  absl::StatusOr<std::string> b = NewToken();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 64u);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(CredentialSetTest, FindsTokensByTheirHashAndCertificatesByName) {
  const std::string text = "# the engines and the desk\n"
                           "token " + Sha256Hex("engine-secret") + "  engine-eu-1  engine\n"
                           "\n"
                           "token\t" + Sha256Hex("alice-secret") + "\talice\toperator,viewer   # trailing comment\n"
                           "cert  engine-eu-2  engine-eu-2  engine\n";
  absl::StatusOr<CredentialSet> set = CredentialSet::Parse(text);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->token_count(), 2u);
  EXPECT_EQ(set->certificate_count(), 1u);

  std::optional<Principal> engine = set->FindToken("engine-secret");
  ASSERT_TRUE(engine.has_value());
  EXPECT_EQ(engine->name, "engine-eu-1");
  EXPECT_TRUE(engine->Has(Role::kEngine));
  EXPECT_FALSE(engine->Has(Role::kOperator));

  std::optional<Principal> alice = set->FindToken("alice-secret");
  ASSERT_TRUE(alice.has_value());
  EXPECT_TRUE(alice->Has(Role::kOperator));
  EXPECT_TRUE(alice->Has(Role::kViewer));
  EXPECT_EQ(RoleSetName(alice->roles), "operator,viewer");

  // The stored hash is not a credential, and neither is a near miss.
  EXPECT_FALSE(set->FindToken(Sha256Hex("engine-secret")).has_value());
  EXPECT_FALSE(set->FindToken("engine-secret ").has_value());
  EXPECT_FALSE(set->FindToken("").has_value());

  std::optional<Principal> by_cert = set->FindCertificate("engine-eu-2");
  ASSERT_TRUE(by_cert.has_value());
  EXPECT_EQ(by_cert->name, "engine-eu-2");
  EXPECT_FALSE(set->FindCertificate("engine-eu-1").has_value());
}

TEST(CredentialSetTest, UpperCaseHashesAreAccepted) {
  std::string hash = Sha256Hex("t");
  for (char& c : hash) c = static_cast<char>(toupper(c));
  absl::StatusOr<CredentialSet> set = CredentialSet::Parse("token " + hash + " p viewer\n");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_TRUE(set->FindToken("t").has_value());
}

struct BadFile {
  std::string name;
  std::string text;
  std::string error;
};

class BadCredentialsTest : public ::testing::TestWithParam<BadFile> {};

TEST_P(BadCredentialsTest, NamesTheLineAndTheReason) {
  absl::StatusOr<CredentialSet> set = CredentialSet::Parse(GetParam().text);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), HasSubstr(GetParam().error));
}

INSTANTIATE_TEST_SUITE_P(
    Files, BadCredentialsTest,
    ::testing::Values(
        BadFile{"TooFewFields", "# c\ntoken " + Sha256Hex("a") + " alice\n", "line 2: expected 4 fields"},
        BadFile{"UnknownKind", "password " + Sha256Hex("a") + " alice operator\n",
                "line 1: kind \"password\" is not token or cert"},
        BadFile{"UnknownRole", "token " + Sha256Hex("a") + " alice admin\n",
                "line 1: role \"admin\" is not engine, operator or viewer"},
        BadFile{"EmptyRole", "token " + Sha256Hex("a") + " alice operator,\n", "role \"\" is not"},
        BadFile{"PlainToken", "token hunter2 alice operator\n", "line 1: the token credential is not a SHA-256"},
        BadFile{"DuplicateHash",
                "token " + Sha256Hex("a") + " alice operator\ntoken " + Sha256Hex("a") + " bob viewer\n",
                "line 2: the same token hash appears twice"},
        BadFile{"DuplicateCert", "cert e1 e1 engine\ncert e1 e2 engine\n",
                "line 2: certificate common name \"e1\" appears twice"}),
    [](const ::testing::TestParamInfo<BadFile>& info) { return info.param.name; });

TEST(CredentialSetTest, APastedTokenIsNeverEchoedInTheError) {
  absl::StatusOr<CredentialSet> set = CredentialSet::Parse("token s3cr3t-t0ken-value alice operator\n");
  ASSERT_FALSE(set.ok());
  EXPECT_THAT(set.status().message(), Not(HasSubstr("s3cr3t-t0ken-value")));
}

TEST(CredentialSetTest, LoadNamesAMissingFile) {
  absl::StatusOr<CredentialSet> set = CredentialSet::Load("/nonexistent/clm/tokens");
  ASSERT_FALSE(set.ok());
  EXPECT_THAT(set.status().message(), HasSubstr("/nonexistent/clm/tokens"));
}

}  // namespace
}  // namespace clm::auth
