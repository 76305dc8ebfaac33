// Bad input, across every service, against the real binary: each request gets its precise error (the code,
// and a message naming the field and the reason), and nothing else changes: no trade stored, no job
// created, no deployment version or audit entry, the mode untouched. Requests are written as grpcurl would send them.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/e2e/real_server_fixture.h"
#include "tests/testing/reflection_client.h"
#include "tests/testing/test_util.h"

namespace clm {
namespace {

struct Case {
  std::string service;
  std::string method;
  std::string json;
  absl::StatusCode code;
  std::string message;  // a substring the message must contain
};

// A valid trade with one field replaced by `override` (a JSON member, e.g. "confidence": 1.7).
std::string Trade(const std::string& override_member = "", const std::string& drop = "") {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"tradeId", R"("bad-1")"},      {"symbol", R"("BTCUSDT")"},  {"modelId", R"("ensemble")"},
      {"confidence", "0.6"},          {"outcome", R"("WIN")"},     {"pnl", "1.5"},
      {"openedAt", R"("2026-02-09T10:00:00Z")"}, {"closedAt", R"("2026-02-09T11:00:00Z")"}};
  std::vector<std::string> parts;
  for (const auto& [name, value] : fields) {
    if (name == drop) continue;
    if (!override_member.empty() && override_member.rfind(absl::StrCat("\"", name, "\""), 0) == 0) continue;
    parts.push_back(absl::StrCat("\"", name, "\": ", value));
  }
  if (!override_member.empty()) parts.push_back(override_member);
  return absl::StrCat("{", absl::StrJoin(parts, ", "), "}");
}

std::string Batch(const std::string& trade) { return absl::StrCat(R"({"batchId": "9", "trades": [)", trade, "]}"); }

using BadInputTest = clm::testing::RealServerTest;

TEST_F(BadInputTest, EveryBadRequestGetsItsPreciseErrorAndChangesNothing) {
  std::string too_many = R"({"trades": [)";
  for (int i = 0; i < 1001; ++i) absl::StrAppend(&too_many, i ? "," : "", R"({"tradeId": "x)", i, R"("})");
  absl::StrAppend(&too_many, "]}");
  const std::string long_name(129, 'a');
  const std::string long_reason(1025, 'r');
  const std::vector<Case> cases = {
      // TradeIngest: batch-level problems.
      {"clm.v1.TradeIngest", "Record", R"({"trades": []})", absl::StatusCode::kInvalidArgument,
       "trades: a batch must hold at least one trade"},
      {"clm.v1.TradeIngest", "Record", too_many, absl::StatusCode::kInvalidArgument,
       "trades: a batch may hold at most 1000 trades, got 1001"},
      {"clm.v1.TradeIngest", "GetDatasetSummary",
       R"({"filter": {"closedFrom": "2026-02-10T00:00:00Z", "closedTo": "2026-02-09T00:00:00Z"}})",
       absl::StatusCode::kInvalidArgument, "filter.closed_to: must be after filter.closed_from"},
      {"clm.v1.TradeIngest", "ListDeadLetters", R"({"limit": 1001})", absl::StatusCode::kInvalidArgument,
       "limit: must be at most 1000, got 1001"},
      // CadenceStatus.
      {"clm.v1.CadenceStatus", "SetMode", R"({"changedBy": "alice", "reason": "why"})",
       absl::StatusCode::kInvalidArgument, "mode:"},
      {"clm.v1.CadenceStatus", "SetMode", R"({"mode": "AUTO_CALIBRATE", "reason": "why"})",
       absl::StatusCode::kInvalidArgument, "changed_by:"},
      {"clm.v1.CadenceStatus", "SetMode", R"({"mode": "AUTO_CALIBRATE", "changedBy": "alice"})",
       absl::StatusCode::kInvalidArgument, "reason:"},
      {"clm.v1.CadenceStatus", "SetMode",
       absl::StrCat(R"({"mode": "AUTO_CALIBRATE", "changedBy": ")", long_name, R"(", "reason": "why"})"),
       absl::StatusCode::kInvalidArgument, "changed_by:"},
      {"clm.v1.CadenceStatus", "SetMode",
       absl::StrCat(R"({"mode": "AUTO_CALIBRATE", "changedBy": "alice", "reason": ")", long_reason, R"("})"),
       absl::StatusCode::kInvalidArgument, "reason:"},
      {"clm.v1.CadenceStatus", "GetMonitorHistory", R"({"limit": 1001})", absl::StatusCode::kInvalidArgument,
       "limit:"},
      {"clm.v1.CadenceStatus", "GetStatus", absl::StrCat(R"({"symbol": ")", std::string(65, 'S'), R"("})"),
       absl::StatusCode::kInvalidArgument, "symbol: must be at most 64 bytes"},
      // CalibrationJob.
      {"clm.v1.CalibrationJob", "Submit", R"({"options": {"folds": 1}})", absl::StatusCode::kInvalidArgument,
       "options.folds: must be within [2, 100], got 1"},
      {"clm.v1.CalibrationJob", "Submit", R"({"options": {"bins": 1001}})", absl::StatusCode::kInvalidArgument,
       "options.bins"},
      {"clm.v1.CalibrationJob", "Submit", R"({"options": {"tolerance": 2}})", absl::StatusCode::kInvalidArgument,
       "options.tolerance"},
      {"clm.v1.CalibrationJob", "Submit", R"({"options": {"bootstrapResamples": 5}})",
       absl::StatusCode::kInvalidArgument, "options.bootstrap_resamples"},
      {"clm.v1.CalibrationJob", "Submit", R"({"method": 7})", absl::StatusCode::kInvalidArgument,
       "method: must be ISOTONIC, PLATT or VENN_ABERS, got 7"},
      {"clm.v1.CalibrationJob", "Submit",
       R"({"filter": {"closedFrom": "2026-02-10T00:00:00Z", "closedTo": "2026-02-09T00:00:00Z"}})",
       absl::StatusCode::kInvalidArgument, "filter.closed_to: must be after filter.closed_from"},
      {"clm.v1.CalibrationJob", "Submit", R"({"currentWeights": {"xgboost": -0.5}})",
       absl::StatusCode::kInvalidArgument, "current_weights[xgboost]: must be a finite number >= 0, got -0.5"},
      {"clm.v1.CalibrationJob", "Submit", absl::StrCat(R"({"submittedBy": ")", long_name, R"("})"),
       absl::StatusCode::kInvalidArgument, "submitted_by: must be at most 128 bytes"},
      {"clm.v1.CalibrationJob", "Get", "{}", absl::StatusCode::kInvalidArgument, "id: is required"},
      {"clm.v1.CalibrationJob", "Get", R"({"id": "cal_19990101_000000"})", absl::StatusCode::kNotFound,
       "id: no job cal_19990101_000000"},
      {"clm.v1.CalibrationJob", "Cancel", R"({"id": "cal_19990101_000000"})", absl::StatusCode::kNotFound,
       "id: no job cal_19990101_000000"},
      {"clm.v1.CalibrationJob", "GetReport", R"({"id": "cal_19990101_000000"})", absl::StatusCode::kNotFound,
       "id: no job cal_19990101_000000"},
      {"clm.v1.CalibrationJob", "List", R"({"pageSize": 201})", absl::StatusCode::kInvalidArgument,
       "page_size: must be at most 200, got 201"},
      {"clm.v1.CalibrationJob", "List", R"({"state": 99})", absl::StatusCode::kInvalidArgument,
       "state: unknown job state 99"},
      {"clm.v1.CalibrationJob", "List", R"({"pageToken": "not-a-token"})", absl::StatusCode::kInvalidArgument,
       "page_token: not a token from a previous List"},
      // Deployment.
      {"clm.v1.Deployment", "Approve", R"({"jobId": "cal_1", "stage": "STAGE_SHADOW", "reason": "why"})",
       absl::StatusCode::kInvalidArgument, "approver: is required"},
      {"clm.v1.Deployment", "Approve", R"({"jobId": "cal_1", "stage": "STAGE_SHADOW", "approver": "alice"})",
       absl::StatusCode::kInvalidArgument, "reason: is required"},
      {"clm.v1.Deployment", "Approve", R"({"jobId": "cal_1", "approver": "alice", "reason": "why"})",
       absl::StatusCode::kInvalidArgument, "stage: must be STAGE_SHADOW or STAGE_PRODUCTION"},
      {"clm.v1.Deployment", "Approve", R"({"stage": "STAGE_SHADOW", "approver": "alice", "reason": "why"})",
       absl::StatusCode::kInvalidArgument, "job_id: is required"},
      {"clm.v1.Deployment", "Rollback", R"({"reason": "why"})", absl::StatusCode::kInvalidArgument,
       "approver: is required"},
      {"clm.v1.Deployment", "Calibrate", R"({"confidences": [0.5, 1.5]})", absl::StatusCode::kInvalidArgument,
       "confidences[1]: must be within [0, 1], got 1.5"},
      {"clm.v1.Deployment", "GetAudit", R"({"limit": 1001})", absl::StatusCode::kInvalidArgument,
       "limit: must be at most 1000, got 1001"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.service, "/", c.method, " ", c.json.substr(0, 120)));
    absl::StatusOr<std::string> answer = client_->CallUnary(c.service, c.method, c.json);
    ASSERT_FALSE(answer.ok()) << *answer;
    EXPECT_EQ(answer.status().code(), c.code) << answer.status();
    EXPECT_NE(answer.status().message().find(c.message), std::string::npos) << answer.status();
    EXPECT_EQ(answer.status().message().find("options.options"), std::string::npos) << answer.status();
  }
  // A job watch with no id ends the stream with the same kind of error.
  auto watch = client_->CallStream("clm.v1.CalibrationJob", "Watch", {"{}"});
  ASSERT_FALSE(watch.ok());
  EXPECT_EQ(watch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(watch.status().message(), "id: is required");

  // Per-trade problems: the call succeeds, the trade is rejected by field and dead-lettered, none stored.
  struct TradeCase {
    std::string trade;
    std::string field;
    std::string reason;
  };
  const std::vector<TradeCase> trade_cases = {
      {Trade(R"("confidence": 1.7)"), "confidence", "must be within [0, 1], got 1.7"},
      {Trade(R"("confidence": "NaN")"), "confidence", "must be a finite number"},
      {Trade("", "tradeId"), "trade_id", "is required"},
      {Trade("", "symbol"), "symbol", "is required"},
      {Trade("", "outcome"), "outcome", "must be WIN, LOSS or NEUTRAL"},
      {Trade(R"("pnl": "Infinity")"), "pnl", "must be a finite number"},
      {Trade("", "closedAt"), "closed_at", "is required"},
      {Trade(R"("closedAt": "2099-01-01T00:00:00Z")"), "closed_at", "is in the future"},
      {Trade(R"("closedAt": "1999-01-01T00:00:00Z")"), "closed_at", "must not be before 2000-01-01"},
      {Trade(R"("openedAt": "2026-02-09T12:00:00Z")"), "opened_at", "must not be after closed_at"},
      {Trade(absl::StrCat(R"("symbol": ")", std::string(65, 'S'), R"(")")), "symbol", "must be at most 64 bytes"},
      {Trade(R"("modelConfidences": {"xgboost": 1.2})"), "model_confidences[xgboost]",
       "must be within [0, 1], got 1.2"},
      {Trade(R"("side": 5)"), "side", "must be LONG, SHORT or unset"},
  };
  for (const TradeCase& c : trade_cases) {
    SCOPED_TRACE(c.trade);
    absl::StatusOr<std::string> ack = client_->CallUnary("clm.v1.TradeIngest", "Record", Batch(c.trade));
    ASSERT_TRUE(ack.ok()) << ack.status();
    EXPECT_EQ(ack->find(R"("accepted")"), std::string::npos) << *ack;
    EXPECT_NE(ack->find(absl::StrCat(R"("field":")", c.field, R"(")")), std::string::npos) << *ack;
    EXPECT_NE(ack->find(c.reason), std::string::npos) << *ack;
  }
  EXPECT_GE(cases.size() + 1 + trade_cases.size(), 30u);

  // Nothing changed: no trade, no job, the mode as it was; every rejected trade is in the dead letters.
  auto summary = client_->CallUnary("clm.v1.TradeIngest", "GetDatasetSummary", "{}");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(*summary, "{}") << "a bad request stored a trade";
  auto jobs = client_->CallUnary("clm.v1.CalibrationJob", "List", "{}");
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(*jobs, "{}") << "a bad request created a job";
  auto versions = client_->CallUnary("clm.v1.Deployment", "List", "{}");
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(*versions, "{}") << "a bad request created a deployment version";
  auto audit = client_->CallUnary("clm.v1.Deployment", "GetAudit", "{}");
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(*audit, "{}") << "a malformed request reached the deployment audit";
  auto policy = client_->CallUnary("clm.v1.CadenceStatus", "GetPolicy", "{}");
  ASSERT_TRUE(policy.ok());
  EXPECT_NE(policy->find(R"("mode":"LOGGING_ONLY")"), std::string::npos) << *policy;
  EXPECT_EQ(policy->find("lastModeChange"), std::string::npos) << "a bad request changed the mode";
  auto dead = client_->CallUnary("clm.v1.TradeIngest", "ListDeadLetters", R"({"limit": 1000})");
  ASSERT_TRUE(dead.ok());
  size_t entries = 0;
  for (size_t at = dead->find(R"("reason")"); at != std::string::npos; at = dead->find(R"("reason")", at + 1)) ++entries;
  EXPECT_EQ(entries, trade_cases.size());
}

}  // namespace
}  // namespace clm
