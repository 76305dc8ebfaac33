// The legacy JSON Lines trade log parser (client/lib/legacy_trade_log.h), without a server.
#include "client/lib/legacy_trade_log.h"

#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clm::client {
namespace {

using ::testing::HasSubstr;

TEST(ParseLegacyTradeLineTest, AcceptsTheOldLogsFieldNames) {
  absl::StatusOr<clm::v1::TradeOutcome> t = ParseLegacyTradeLine(
      R"({"id": 42, "symbol": "ETHUSDT", "model": "xgb", "confidence": "0.61", "outcome": "loss", "pnl": -3.5,)"
      R"( "entry_time": 1714560000, "exit_time": 1714563600000, "side": "sell", "models": {"a": 0.6}})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->trade_id(), "42");
  EXPECT_EQ(t->model_id(), "xgb");
  EXPECT_DOUBLE_EQ(t->confidence(), 0.61);
  EXPECT_EQ(t->outcome(), clm::v1::TradeOutcome::LOSS);
  EXPECT_EQ(t->opened_at().seconds(), 1714560000);
  EXPECT_EQ(t->closed_at().seconds(), 1714563600);  // milliseconds told apart from seconds
  EXPECT_EQ(t->side(), clm::v1::TradeOutcome::SHORT);
  EXPECT_DOUBLE_EQ(t->model_confidences().at("a"), 0.6);

  t = ParseLegacyTradeLine(R"({"trade_id": "x", "symbol": "S", "confidence": 0.5, "outcome": "Neutral",)"
                           R"( "timestamp": "2024-05-01T12:00:00.5+02:00"})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->closed_at().seconds(), 1714557600);
  EXPECT_EQ(t->closed_at().nanos(), 500000000);

  auto error = [](const std::string& line) { return std::string(ParseLegacyTradeLine(line).status().message()); };
  EXPECT_EQ(error(R"({"trade_id": "x", "symbol": "S", "confidence": 0.5, "outcome": "WIN"})"),
            "closed_at: missing (also accepted: exit_time, timestamp)");
  EXPECT_EQ(error(R"({"trade_id": "x", "symbol": "S", "confidence": 0.5, "outcome": "won", "closed_at": 1})"),
            "outcome: must be WIN, LOSS or NEUTRAL, got \"won\"");
  EXPECT_EQ(error(R"({"trade_id": "x", "symbol": "S", "confidence": 0.5, "outcome": "WIN", "exit_time": "soon"})"),
            "exit_time: must be an RFC 3339 time or epoch seconds/milliseconds, got \"soon\"");
  EXPECT_THAT(error("{not json"), HasSubstr("not a JSON object"));
}

// Found by the legacy_jsonl fuzzer: an epoch number past what 64-bit microseconds hold was converted to an
// integer anyway (undefined behaviour; in practice a garbage time). It is now an error naming the field.
TEST(ParseLegacyTradeLineTest, RefusesEpochNumbersBeyondTheRangeOfTime) {
  auto error = [](const std::string& line) { return std::string(ParseLegacyTradeLine(line).status().message()); };
  EXPECT_EQ(error(R"({"trade_id": "x", "symbol": "S", "confidence": 0.5, "outcome": "WIN", "closed_at": 1.7e22})"),
            "closed_at: must be an RFC 3339 time or epoch seconds/milliseconds, got 1.7e+22");
  EXPECT_EQ(error(R"({"trade_id": "x", "symbol": "S", "confidence": 0.5, "outcome": "WIN", "closed_at": 1,)"
                  R"( "entry_time": -1e19})"),
            "entry_time: must be an RFC 3339 time or epoch seconds/milliseconds, got -1e+19");
  EXPECT_THAT(error(R"({"trade_id": "x", "symbol": "S", "confidence": 0.5, "outcome": "WIN", "timestamp": "1e300"})"),
              HasSubstr("timestamp: must be an RFC 3339 time"));
  EXPECT_FALSE(ParseTimeText("1e300").ok());
  // The largest magnitudes that fit are still times (microseconds, about 290,000 years from 1970).
  absl::StatusOr<absl::Time> t = ParseTimeText("9.1e18");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(absl::ToUnixMicros(*t), 9'100'000'000'000'000'000);
}

// Found by the legacy_jsonl fuzzer: with several bad model confidences the one named followed the map's
// iteration order, which differs between reads, so one line gave different messages. The first name wins.
TEST(ParseLegacyTradeLineTest, NamesTheFirstBadModelByNameEveryTime) {
  std::string line = R"({"trade_id": "x", "symbol": "S", "confidence": 0.5, "outcome": "WIN", "closed_at": 1,)"
                     R"( "models": {)";
  for (int i = 19; i >= 0; --i) absl::StrAppend(&line, "\"m", 10 + i, "\": \"high\", ");
  absl::StrAppend(&line, "\"a\": 0.5}}");
  for (int read = 0; read < 10; ++read) {
    EXPECT_EQ(std::string(ParseLegacyTradeLine(line).status().message()), "models.m10: must be a number, got \"high\"");
  }
}

TEST(ParseLegacyTradeLogTest, NumbersEveryLineAndSkipsBlankOnes) {
  std::istringstream in(
      R"({"trade_id": "a", "symbol": "S", "confidence": 0.5, "outcome": "WIN", "closed_at": 1714557600})"
      "\n\n   \n"
      R"({"trade_id": "b", "symbol": "S", "confidence": "high", "outcome": "WIN", "closed_at": 1714557600})"
      "\n"
      R"({"trade_id": "c", "symbol": "S", "confidence": 0.7, "outcome": "LOSS", "closed_at": 1714557601})");
  LegacyTradeLog log = ParseLegacyTradeLog(in);
  EXPECT_EQ(log.lines, 3u);
  ASSERT_EQ(log.trades.size(), 2u);
  EXPECT_EQ(log.trades[0].trade_id(), "a");
  EXPECT_EQ(log.trades[1].trade_id(), "c");
  EXPECT_THAT(log.trade_lines, ::testing::ElementsAre(1u, 5u));
  ASSERT_EQ(log.errors.size(), 1u);
  EXPECT_EQ(log.errors[0].line, 4u);
  EXPECT_EQ(log.errors[0].message, "confidence: must be a number, got \"high\"");
}

}  // namespace
}  // namespace clm::client
