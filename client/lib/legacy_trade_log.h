#ifndef CLM_CLIENT_LIB_LEGACY_TRADE_LOG_H_
#define CLM_CLIENT_LIB_LEGACY_TRADE_LOG_H_

#include <cstddef>
#include <istream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "clm/v1/trade.pb.h"

namespace clm::client {

// The trading engine's legacy trade log (clm_trades.jsonl): one JSON object per line. No gRPC here: the
// parser is plain data-in, data-out, so `clmctl trades import` and the fuzzer run the same code.
//
// The parser checks shape (types, required fields, enum names, time formats), not ranges: a confidence of
// 1.7 parses, and the server rejects it with its own reason, as it would for any client.

// Parses one line into a trade. Errors read "<field>: <reason>", with the field named as it appears in the
// line, e.g. `confidence: must be a number, got "high"`. Times are kept to the microsecond.
absl::StatusOr<clm::v1::TradeOutcome> ParseLegacyTradeLine(absl::string_view line);

// Parses a time given as RFC 3339 ("2024-05-01T12:00:00Z", offsets and fractions allowed; without an offset,
// UTC), "YYYY-MM-DD HH:MM:SS" (UTC), or a number of seconds, milliseconds or microseconds since the epoch
// (told apart by magnitude). Numbers beyond what a time can hold (years past about 292,000) are errors.
absl::StatusOr<absl::Time> ParseTimeText(absl::string_view text);

// A whole log, read line by line. Blank lines are skipped and not counted.
struct LegacyTradeLog {
  struct LineError {
    size_t line = 0;      // 1-based line number in the input
    std::string message;  // as ParseLegacyTradeLine reports it
  };
  size_t lines = 0;                        // non-blank lines: trades.size() + errors.size()
  std::vector<clm::v1::TradeOutcome> trades;
  std::vector<size_t> trade_lines;         // parallel to `trades`: each trade's 1-based line number
  std::vector<LineError> errors;           // in input order
};

// Reads `in` to its end. The caller checks `in.bad()` afterwards for a read error.
LegacyTradeLog ParseLegacyTradeLog(std::istream& in);

}  // namespace clm::client

#endif  // CLM_CLIENT_LIB_LEGACY_TRADE_LOG_H_
