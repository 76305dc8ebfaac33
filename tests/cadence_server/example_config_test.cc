// deploy/clm.textproto parses, and documents exactly the defaults; the policy in ServerConfig is resolved
// and validated with the cadence library's rules.
#include <fstream>
#include <sstream>
#include <string>

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "lib/cadence/policy.h"
#include "lib/config/config.h"

namespace clm::config {
namespace {

using google::protobuf::util::MessageDifferencer;

const std::string kExample = std::string(CLM_SOURCE_DIR) + "/deploy/clm.textproto";

TEST(ExampleConfigTest, ExampleParsesAndEqualsTheDefaults) {
  absl::StatusOr<clm::v1::ServerConfig> example = LoadServerConfig(kExample);
  ASSERT_TRUE(example.ok()) << example.status();
  absl::StatusOr<clm::v1::ServerConfig> defaults = LoadServerConfig("");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  // The file promises that, as shipped, it changes nothing.
  EXPECT_TRUE(MessageDifferencer::Equals(*example, *defaults))
      << "example:\n" << example->DebugString() << "defaults:\n" << defaults->DebugString();
  EXPECT_TRUE(MessageDifferencer::Equals(example->policy(), cadence::DefaultPolicy()))
      << example->policy().DebugString();
}

TEST(ExampleConfigTest, ExampleSetsEveryPolicyFieldExplicitly) {
  // Parsed but not resolved, the example must already hold every field: nothing is left undocumented.
  std::ifstream in(kExample);
  ASSERT_TRUE(in.good()) << kExample;
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<clm::v1::ServerConfig> raw = ParseServerConfig(text.str());
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_TRUE(MessageDifferencer::Equals(raw->policy(), cadence::DefaultPolicy())) << raw->policy().DebugString();
}

TEST(ExampleConfigTest, UnsetPolicyFieldsTakeDefaultsAndSetOnesAreKept) {
  absl::StatusOr<clm::v1::ServerConfig> parsed = ParseServerConfig(R"pb(
    policy { triggers { batch_new_trades: 250 } monitor { interval_seconds: 60 } default_mode: LOGGING_ONLY }
  )pb");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<clm::v1::ServerConfig> resolved = ResolveServerConfig(*parsed);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->policy().triggers().batch_new_trades(), 250);
  EXPECT_EQ(resolved->policy().monitor().interval_seconds(), 60);
  EXPECT_EQ(resolved->policy().triggers().time_min_new_trades(), cadence::kDefaultTimeMinNewTrades);
  EXPECT_EQ(resolved->policy().gates().min_total_trades(), cadence::kDefaultMinTotalTrades);
  EXPECT_EQ(resolved->policy().monitor().nudge_debounce_ms(), cadence::kDefaultNudgeDebounceMs);
  EXPECT_TRUE(resolved->policy().levels().production().require_manual_approval());
}

TEST(ExampleConfigTest, InvalidPolicyFieldsAreNamedWithThePolicyPrefix) {
  absl::StatusOr<clm::v1::ServerConfig> parsed = ParseServerConfig("policy { gates { min_win_share: 1.5 } }");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<clm::v1::ServerConfig> resolved = ResolveServerConfig(*parsed);
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(resolved.status().message().rfind("policy.gates.min_win_share: ", 0), 0u) << resolved.status();

  parsed = ParseServerConfig("policy { levels { production { require_manual_approval: false } } }");
  ASSERT_TRUE(parsed.ok());
  resolved = ResolveServerConfig(*parsed);
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.status().message().rfind("policy.levels.production.require_manual_approval", 0), 0u)
      << resolved.status();
}

TEST(ExampleConfigTest, UnknownPolicyFieldIsASyntaxErrorWithItsLine) {
  absl::StatusOr<clm::v1::ServerConfig> parsed = ParseServerConfig("policy {\n  gates { min_trades: 5 }\n}");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("line 2"), std::string::npos) << parsed.status();
  EXPECT_NE(parsed.status().message().find("min_trades"), std::string::npos) << parsed.status();
}

}  // namespace
}  // namespace clm::config
