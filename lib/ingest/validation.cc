#include "lib/ingest/validation.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace clm::ingest {
namespace {

using clm::v1::TradeOutcome;

// 2000-01-01T00:00:00Z: anything earlier is a unit mistake (seconds vs. milliseconds), not a real trade.
constexpr int64_t kEarliestSeconds = 946684800;

// The shortest form that reads back as the same double: "-0.1", not "-0.10000000000000001".
std::string Describe(double value) {
  for (int precision = 15; precision < 17; ++precision) {
    std::string text = absl::StrFormat("%.*g", precision, value);
    if (std::strtod(text.c_str(), nullptr) == value) return text;
  }
  return absl::StrFormat("%.17g", value);
}

std::optional<FieldError> CheckProbability(const std::string& field, double value) {
  if (!std::isfinite(value)) return FieldError{field, absl::StrCat("must be a finite number, got ", Describe(value))};
  if (value < 0.0 || value > 1.0) {
    return FieldError{field, absl::StrCat("must be within [0, 1], got ", Describe(value))};
  }
  return std::nullopt;
}

std::optional<FieldError> CheckTimestamp(const std::string& field, const google::protobuf::Timestamp& ts,
                                         absl::Time now, absl::Duration future_tolerance) {
  if (ts.nanos() < 0 || ts.nanos() > 999'999'999) {
    return FieldError{field, absl::StrCat("nanos must be within [0, 999999999], got ", ts.nanos())};
  }
  if (ts.seconds() < kEarliestSeconds) {
    return FieldError{field, absl::StrCat("must not be before 2000-01-01T00:00:00Z, got ", ts.seconds(),
                                          " seconds since the epoch")};
  }
  absl::Time t = absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
  if (t > now + future_tolerance) {
    return FieldError{field, absl::StrCat("is in the future: ", absl::FormatTime(t, absl::UTCTimeZone()),
                                          " is after the server's clock ",
                                          absl::FormatTime(now, absl::UTCTimeZone()), " by more than ",
                                          absl::FormatDuration(future_tolerance))};
  }
  return std::nullopt;
}

std::optional<FieldError> CheckId(const std::string& field, const std::string& value, size_t max_bytes,
                                  bool required) {
  if (value.empty()) {
    if (required) return FieldError{field, "is required"};
    return std::nullopt;
  }
  if (value.size() > max_bytes) {
    return FieldError{field, absl::StrCat("must be at most ", max_bytes, " bytes, got ", value.size())};
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) return FieldError{field, "must not contain control characters"};
  }
  return std::nullopt;
}

}  // namespace

std::optional<FieldError> ValidateTrade(const TradeOutcome& trade, absl::Time now,
                                        absl::Duration future_tolerance) {
  if (auto e = CheckId("trade_id", trade.trade_id(), kMaxTradeIdBytes, true)) return e;
  if (auto e = CheckId("symbol", trade.symbol(), kMaxSymbolBytes, true)) return e;
  if (auto e = CheckId("model_id", trade.model_id(), kMaxModelIdBytes, false)) return e;
  if (auto e = CheckProbability("confidence", trade.confidence())) return e;
  if (trade.outcome() != TradeOutcome::WIN && trade.outcome() != TradeOutcome::LOSS &&
      trade.outcome() != TradeOutcome::NEUTRAL) {
    return FieldError{"outcome", absl::StrCat("must be WIN, LOSS or NEUTRAL, got ",
                                              trade.outcome() == TradeOutcome::OUTCOME_UNSPECIFIED
                                                  ? std::string("OUTCOME_UNSPECIFIED")
                                                  : absl::StrCat(static_cast<int>(trade.outcome())))};
  }
  if (!std::isfinite(trade.pnl())) {
    return FieldError{"pnl", absl::StrCat("must be a finite number, got ", Describe(trade.pnl()))};
  }
  if (!trade.has_closed_at()) return FieldError{"closed_at", "is required"};
  if (auto e = CheckTimestamp("closed_at", trade.closed_at(), now, future_tolerance)) return e;
  if (trade.has_opened_at()) {
    if (auto e = CheckTimestamp("opened_at", trade.opened_at(), now, future_tolerance)) return e;
    const auto& o = trade.opened_at();
    const auto& c = trade.closed_at();
    if (o.seconds() > c.seconds() || (o.seconds() == c.seconds() && o.nanos() > c.nanos())) {
      return FieldError{"opened_at", "must not be after closed_at"};
    }
  }
  if (trade.side() != TradeOutcome::SIDE_UNSPECIFIED && trade.side() != TradeOutcome::LONG &&
      trade.side() != TradeOutcome::SHORT) {
    return FieldError{"side", absl::StrCat("must be LONG, SHORT or unset, got ", static_cast<int>(trade.side()))};
  }
  if (trade.model_confidences_size() > static_cast<int>(kMaxModelConfidences)) {
    return FieldError{"model_confidences", absl::StrCat("must have at most ", kMaxModelConfidences,
                                                        " entries, got ", trade.model_confidences_size())};
  }
  // In key order: a map's iteration order differs between copies of the same message, and a trade must be
  // rejected for the same reason every time it is sent (the fuzzer found two sends reporting two fields).
  std::vector<std::pair<const std::string*, double>> entries;
  entries.reserve(trade.model_confidences().size());
  for (const auto& [name, value] : trade.model_confidences()) entries.emplace_back(&name, value);
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return *a.first < *b.first; });
  for (const auto& [name, value] : entries) {
    if (auto e = CheckId("model_confidences key", *name, kMaxModelNameBytes, true)) return e;
    if (auto e = CheckProbability(absl::StrCat("model_confidences[", *name, "]"), value)) return e;
  }
  return std::nullopt;
}

void Canonicalize(TradeOutcome& trade) {
  trade.DiscardUnknownFields();
  if (trade.confidence() == 0.0) trade.set_confidence(0.0);
  if (trade.pnl() == 0.0) trade.set_pnl(0.0);
  for (auto& [name, value] : *trade.mutable_model_confidences()) {
    if (value == 0.0) value = 0.0;
  }
}

uint64_t ContentHash(const TradeOutcome& trade) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream raw(&bytes);
    google::protobuf::io::CodedOutputStream out(&raw);
    out.SetSerializationDeterministic(true);  // map entries sorted by key
    trade.SerializeToCodedStream(&out);
  }
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace clm::ingest
