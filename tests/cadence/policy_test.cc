#include "lib/cadence/policy.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace clm::cadence {
namespace {

using ::google::protobuf::util::MessageDifferencer;

std::string ErrorOf(absl::string_view text) {
  absl::StatusOr<clm::v1::CadencePolicy> p = ParsePolicyText(text);
  EXPECT_FALSE(p.ok()) << "parsed: " << text;
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(p.status().message());
}

TEST(PolicyTest, DefaultsAreTheDocumentedValues) {
  const clm::v1::CadencePolicy p = DefaultPolicy();
  EXPECT_EQ(p.gates().min_total_trades(), 50);
  EXPECT_EQ(p.gates().min_span_days(), 3.0);
  EXPECT_EQ(p.gates().min_win_share(), 0.20);
  EXPECT_EQ(p.gates().min_loss_share(), 0.20);
  EXPECT_EQ(p.levels().calibration().min_total_trades(), 50);
  EXPECT_EQ(p.levels().calibration().min_span_days(), 0.0);
  EXPECT_TRUE(p.levels().calibration().require_diversity());
  EXPECT_FALSE(p.levels().calibration().require_manual_approval());
  EXPECT_EQ(p.levels().shadow().min_total_trades(), 100);
  EXPECT_EQ(p.levels().shadow().min_span_days(), 3.0);
  EXPECT_FALSE(p.levels().shadow().require_manual_approval());
  EXPECT_EQ(p.levels().production().min_total_trades(), 500);
  EXPECT_EQ(p.levels().production().min_span_days(), 14.0);
  EXPECT_TRUE(p.levels().production().require_manual_approval());
  EXPECT_EQ(p.triggers().batch_new_trades(), 100);
  EXPECT_EQ(p.triggers().time_max_interval_seconds(), 86400);
  EXPECT_EQ(p.triggers().time_min_new_trades(), 20);
  EXPECT_EQ(p.default_mode(), clm::v1::LOGGING_ONLY);
  EXPECT_EQ(p.monitor().interval_seconds(), 300);
  EXPECT_EQ(p.monitor().nudge_debounce_ms(), 1000);
  EXPECT_EQ(p.monitor().history_limit(), 1000);
  EXPECT_TRUE(ValidatePolicy(p).ok());
}

TEST(PolicyTest, EmptyTextIsTheDefaultPolicy) {
  absl::StatusOr<clm::v1::CadencePolicy> p = ParsePolicyText("");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*p, DefaultPolicy()));
}

TEST(PolicyTest, SetFieldsWinAndUnsetFieldsTakeDefaults) {
  absl::StatusOr<clm::v1::CadencePolicy> p = ParsePolicyText(R"pb(
    # A stricter shadow level and a quicker batch.
    gates { min_win_share: 0 }
    levels { shadow { min_total_trades: 250 } }
    triggers { batch_new_trades: 40 }
    default_mode: AUTO_SHADOW
    monitor { interval_seconds: 60 }
  )pb");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->gates().min_win_share(), 0.0);  // an explicit 0 is kept, not replaced by the default
  EXPECT_EQ(p->gates().min_loss_share(), 0.20);
  EXPECT_EQ(p->gates().min_total_trades(), 50);
  EXPECT_EQ(p->levels().shadow().min_total_trades(), 250);
  EXPECT_EQ(p->levels().shadow().min_span_days(), 3.0);
  EXPECT_EQ(p->levels().production().min_total_trades(), 500);
  EXPECT_EQ(p->triggers().batch_new_trades(), 40);
  EXPECT_EQ(p->triggers().time_min_new_trades(), 20);
  EXPECT_EQ(p->default_mode(), clm::v1::AUTO_SHADOW);
  EXPECT_EQ(p->monitor().interval_seconds(), 60);
  EXPECT_EQ(p->monitor().nudge_debounce_ms(), 1000);
}

TEST(PolicyTest, SyntaxErrorNamesLineAndColumn) {
  const std::string error = ErrorOf("gates {\n  min_total_trades: 50\n  min_span_days 3\n}\n");
  EXPECT_EQ(error.rfind("line 3, column 17: ", 0), 0u) << error;
}

TEST(PolicyTest, UnknownFieldNamesLineAndField) {
  const std::string error = ErrorOf("\n\ngates { min_wins: 3 }");
  EXPECT_EQ(error.rfind("line 3, column ", 0), 0u) << error;
  EXPECT_NE(error.find("min_wins"), std::string::npos) << error;
}

TEST(PolicyTest, UnknownModeIsASyntaxError) {
  const std::string error = ErrorOf("default_mode: AUTO_PRODUCTION");
  EXPECT_EQ(error.rfind("line 1, column ", 0), 0u) << error;
  EXPECT_NE(error.find("AUTO_PRODUCTION"), std::string::npos) << error;
}

TEST(PolicyTest, NegativeCountNamesTheField) {
  EXPECT_EQ(ErrorOf("gates { min_total_trades: -5 }"),
            "gates.min_total_trades: must be within [0, 1000000000000], got -5");
  EXPECT_EQ(ErrorOf("levels { shadow { min_total_trades: -1 } }"),
            "levels.shadow.min_total_trades: must be within [0, 1000000000000], got -1");
}

TEST(PolicyTest, OutOfRangeShareNamesTheField) {
  EXPECT_EQ(ErrorOf("gates { min_win_share: 1.5 }"), "gates.min_win_share: must be within [0, 1], got 1.5");
  EXPECT_EQ(ErrorOf("gates { min_loss_share: -0.1 }"),
            "gates.min_loss_share: must be within [0, 1], got -0.1");
  EXPECT_EQ(ErrorOf("gates { min_win_share: 0.6 min_loss_share: 0.5 }"),
            "gates.min_win_share + gates.min_loss_share: must be at most 1, got 1.1");
}

TEST(PolicyTest, NotANumberIsRejected) {
  EXPECT_EQ(ErrorOf("gates { min_span_days: nan }"),
            "gates.min_span_days: must be within [0, 3650], got nan");
  EXPECT_EQ(ErrorOf("levels { production { min_span_days: inf } }"),
            "levels.production.min_span_days: must be within [0, 3650], got inf");
}

TEST(PolicyTest, ProductionAlwaysNeedsAPerson) {
  EXPECT_EQ(ErrorOf("levels { production { require_manual_approval: false } }"),
            "levels.production.require_manual_approval: must be true, got false (production is never "
            "reached without a person's approval)");
}

TEST(PolicyTest, TriggerAndMonitorRanges) {
  EXPECT_EQ(ErrorOf("triggers { batch_new_trades: 0 }"),
            "triggers.batch_new_trades: must be within [1, 1000000000000], got 0");
  EXPECT_EQ(ErrorOf("triggers { time_max_interval_seconds: 0 }"),
            "triggers.time_max_interval_seconds: must be within [1, 315360000], got 0");
  EXPECT_EQ(ErrorOf("triggers { time_min_new_trades: -3 }"),
            "triggers.time_min_new_trades: must be within [1, 1000000000000], got -3");
  EXPECT_EQ(ErrorOf("monitor { interval_seconds: 0 }"),
            "monitor.interval_seconds: must be within [1, 86400], got 0");
  EXPECT_EQ(ErrorOf("monitor { nudge_debounce_ms: 60001 }"),
            "monitor.nudge_debounce_ms: must be within [0, 60000], got 60001");
  EXPECT_EQ(ErrorOf("monitor { history_limit: 0 }"),
            "monitor.history_limit: must be within [1, 100000], got 0");
}

TEST(PolicyTest, UnspecifiedDefaultModeIsRejected) {
  EXPECT_EQ(ErrorOf("default_mode: LEARNING_MODE_UNSPECIFIED"),
            "default_mode: must be LOGGING_ONLY, AUTO_CALIBRATE or AUTO_SHADOW, got UNSPECIFIED(0)");
}

TEST(PolicyTest, ResolvePolicyFillsAndValidatesAnEmbeddedPolicy) {
  clm::v1::CadencePolicy given;
  given.mutable_gates()->set_min_total_trades(80);
  absl::StatusOr<clm::v1::CadencePolicy> p = ResolvePolicy(given);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->gates().min_total_trades(), 80);
  EXPECT_EQ(p->gates().min_span_days(), 3.0);
  EXPECT_TRUE(p->levels().production().require_manual_approval());

  given.mutable_gates()->set_min_span_days(-1);
  EXPECT_EQ(ResolvePolicy(given).status().message(), "gates.min_span_days: must be within [0, 3650], got -1");
}

TEST(PolicyTest, LoadPolicyFileReportsPathAndLine) {
  const std::string path = ::testing::TempDir() + "/cadence_policy_test.textproto";
  {
    std::ofstream out(path);
    out << "gates {\n  min_total_trades: 60\n}\ntriggers { batch_new_trades: }\n";
  }
  absl::StatusOr<clm::v1::CadencePolicy> p = LoadPolicyFile(path);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(p.status().message()).rfind(path + ": line 4, column ", 0), 0u) << p.status();

  {
    std::ofstream out(path);
    out << "gates {\n  min_total_trades: 60\n}\n";
  }
  p = LoadPolicyFile(path);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->gates().min_total_trades(), 60);
  std::remove(path.c_str());

  p = LoadPolicyFile(path);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(p.status().message().find(path), absl::string_view::npos);
}

TEST(PolicyTest, NamesOperatorsSee) {
  EXPECT_EQ(ModeName(clm::v1::AUTO_CALIBRATE), "AUTO_CALIBRATE");
  EXPECT_EQ(LevelName(clm::v1::SHADOW), "SHADOW");
  EXPECT_EQ(TriggerName(clm::v1::TRIGGER_BATCH), "BATCH");
  EXPECT_EQ(TriggerName(clm::v1::TRIGGER_TIME), "TIME");
}

}  // namespace
}  // namespace clm::cadence
