// Fuzz target `legacy_jsonl`: bytes -> the legacy trade log parser behind `clmctl trades import`
// (client/lib/legacy_trade_log.h), as a whole file and line by line. Checks the accounting of lines, the
// shape of every parsed trade, that a parsed trade written back as a log line parses to the same trade, and
// that reading the same input twice gives the same result.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/lib/legacy_trade_log.h"
#include "clm/v1/trade.pb.h"
#include "fuzz/fuzz_check.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"

namespace {

using clm::v1::TradeOutcome;
using google::protobuf::Struct;

void CheckTimestamp(const google::protobuf::Timestamp& ts) {
  // Kept to the microsecond, normalized.
  CLM_FUZZ_CHECK(ts.nanos() >= 0 && ts.nanos() <= 999'999'999);
  CLM_FUZZ_CHECK(ts.nanos() % 1000 == 0);
}

// RFC 3339 with microseconds, when the year has the four digits the format allows.
bool TimeText(const google::protobuf::Timestamp& ts, std::string* out) {
  const absl::Time t = absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
  const absl::CivilSecond civil = absl::ToCivilSecond(t, absl::UTCTimeZone());
  if (civil.year() < 1 || civil.year() > 9999) return false;
  *out = absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6S%Ez", t, absl::UTCTimeZone());
  return true;
}

// The trade as a log line in the current field names; false when JSON cannot carry it (e.g. a string that
// is not UTF-8, a time outside years 1-9999).
bool ToLogLine(const TradeOutcome& trade, std::string* line) {
  Struct object;
  auto& f = *object.mutable_fields();
  f["trade_id"].set_string_value(trade.trade_id());
  f["symbol"].set_string_value(trade.symbol());
  if (!trade.model_id().empty()) f["model_id"].set_string_value(trade.model_id());
  f["confidence"].set_number_value(trade.confidence());
  f["outcome"].set_string_value(TradeOutcome::Outcome_Name(trade.outcome()));
  f["pnl"].set_number_value(trade.pnl());
  std::string text;
  if (trade.has_opened_at()) {
    if (!TimeText(trade.opened_at(), &text)) return false;
    f["opened_at"].set_string_value(text);
  }
  if (!TimeText(trade.closed_at(), &text)) return false;
  f["closed_at"].set_string_value(text);
  if (trade.side() != TradeOutcome::SIDE_UNSPECIFIED) f["side"].set_string_value(TradeOutcome::Side_Name(trade.side()));
  if (!trade.model_confidences().empty()) {
    auto& models = *f["model_confidences"].mutable_struct_value()->mutable_fields();
    for (const auto& [name, value] : trade.model_confidences()) models[name].set_number_value(value);
  }
  return google::protobuf::util::MessageToJsonString(object, line).ok();
}

void UnsignZeros(TradeOutcome& trade) {
  if (trade.confidence() == 0.0) trade.set_confidence(0.0);
  if (trade.pnl() == 0.0) trade.set_pnl(0.0);
  for (auto& [name, value] : *trade.mutable_model_confidences()) {
    if (value == 0.0) value = 0.0;
  }
}

void CheckTrade(const TradeOutcome& trade) {
  CLM_FUZZ_CHECK(!trade.trade_id().empty());
  CLM_FUZZ_CHECK(trade.outcome() == TradeOutcome::WIN || trade.outcome() == TradeOutcome::LOSS ||
                 trade.outcome() == TradeOutcome::NEUTRAL);
  CLM_FUZZ_CHECK(trade.side() == TradeOutcome::SIDE_UNSPECIFIED || trade.side() == TradeOutcome::LONG ||
                 trade.side() == TradeOutcome::SHORT);
  CLM_FUZZ_CHECK(trade.has_closed_at());
  CheckTimestamp(trade.closed_at());
  if (trade.has_opened_at()) CheckTimestamp(trade.opened_at());
  std::string line;
  if (!ToLogLine(trade, &line)) return;
  absl::StatusOr<TradeOutcome> again = clm::client::ParseLegacyTradeLine(line);
  // JSON cannot tell -0 from 0 reliably (the parser reads "-0" as the integer 0); the server does not
  // either (see ingest::Canonicalize), so the round trip is compared with zeros unsigned.
  TradeOutcome expected = trade;
  UnsignZeros(expected);
  if (again.ok()) UnsignZeros(*again);
  if (!again.ok() || !google::protobuf::util::MessageDifferencer::Equals(*again, expected)) {
    std::fprintf(stderr, "written back as: %s\nparsed: %s\nreparsed: %s\n", line.c_str(),
                 trade.ShortDebugString().c_str(),
                 again.ok() ? again->ShortDebugString().c_str() : again.status().ToString().c_str());
  }
  CLM_FUZZ_CHECK(again.ok());
  CLM_FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(*again, expected));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = clm::fuzz::SilenceProtobufLogs();
  (void)quiet;
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::istringstream in(input);
  const clm::client::LegacyTradeLog log = clm::client::ParseLegacyTradeLog(in);
  // Every non-blank line is either a trade or an error, numbered in order.
  CLM_FUZZ_CHECK(log.lines == log.trades.size() + log.errors.size());
  CLM_FUZZ_CHECK(log.trade_lines.size() == log.trades.size());
  size_t previous = 0;
  for (size_t line : log.trade_lines) {
    CLM_FUZZ_CHECK(line > previous);
    previous = line;
  }
  previous = 0;
  for (const auto& error : log.errors) {
    CLM_FUZZ_CHECK(error.line > previous);
    previous = error.line;
    // "<field>: <reason>", or "not a JSON object: <reason>".
    CLM_FUZZ_CHECK(absl::StrContains(error.message, ": "));
  }
  for (const TradeOutcome& trade : log.trades) CheckTrade(trade);
  // The same file gives the same trades and the same messages every time it is read.
  std::istringstream in_again(input);
  const clm::client::LegacyTradeLog again = clm::client::ParseLegacyTradeLog(in_again);
  CLM_FUZZ_CHECK(again.errors.size() == log.errors.size());
  for (size_t i = 0; i < log.errors.size(); ++i) {
    CLM_FUZZ_CHECK(again.errors[i].line == log.errors[i].line);
    CLM_FUZZ_CHECK(again.errors[i].message == log.errors[i].message);
  }
  CLM_FUZZ_CHECK(again.trades.size() == log.trades.size());
  for (size_t i = 0; i < log.trades.size(); ++i) {
    CLM_FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(again.trades[i], log.trades[i]));
  }
  return 0;
}
