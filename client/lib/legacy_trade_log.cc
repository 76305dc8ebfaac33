#include "client/lib/legacy_trade_log.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace clm::client {
namespace {

using clm::v1::TradeOutcome;
using google::protobuf::Struct;
using google::protobuf::Value;

std::string Describe(const Value& v) {
  switch (v.kind_case()) {
    case Value::kStringValue:
      return absl::StrCat("\"", absl::CHexEscape(v.string_value()), "\"");
    case Value::kNumberValue:
      return absl::StrCat(v.number_value());
    case Value::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case Value::kNullValue:
      return "null";
    case Value::kStructValue:
      return "an object";
    case Value::kListValue:
      return "a list";
    default:
      return "nothing";
  }
}

absl::Status FieldError(const std::string& field, const std::string& reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

// The first of `names` present (and not null) in `object`; sets *used to its name.
const Value* Lookup(const Struct& object, std::initializer_list<const char*> names, std::string* used) {
  for (const char* name : names) {
    auto it = object.fields().find(name);
    if (it != object.fields().end() && it->second.kind_case() != Value::kNullValue) {
      *used = name;
      return &it->second;
    }
  }
  *used = *names.begin();
  return nullptr;
}

std::string AlsoAccepted(std::initializer_list<const char*> names) {
  std::vector<std::string> rest(names.begin() + 1, names.end());
  return rest.empty() ? "missing" : absl::StrCat("missing (also accepted: ", absl::StrJoin(rest, ", "), ")");
}

absl::StatusOr<double> NumberField(const std::string& field, const Value& v) {
  if (v.kind_case() == Value::kNumberValue) return v.number_value();
  double parsed;
  if (v.kind_case() == Value::kStringValue && absl::SimpleAtod(v.string_value(), &parsed) && std::isfinite(parsed)) {
    return parsed;
  }
  return FieldError(field, absl::StrCat("must be a number, got ", Describe(v)));
}

absl::StatusOr<std::string> StringField(const std::string& field, const Value& v, bool allow_number) {
  if (v.kind_case() == Value::kStringValue) return v.string_value();
  if (allow_number && v.kind_case() == Value::kNumberValue && v.number_value() == std::floor(v.number_value()) &&
      std::fabs(v.number_value()) < 9.0e15) {
    return absl::StrCat(static_cast<int64_t>(v.number_value()));
  }
  return FieldError(field, absl::StrCat("must be a string, got ", Describe(v)));
}

// Nothing when the number is not finite or beyond what 64-bit microseconds hold (converting such a double
// to an integer is undefined behaviour).
std::optional<absl::Time> EpochNumberToTime(double v) {
  constexpr double kMaxMicros = 9.2e18;  // just under 2^63
  if (!(std::fabs(v) < kMaxMicros)) return std::nullopt;
  if (std::fabs(v) >= 1e14) return absl::FromUnixMicros(static_cast<int64_t>(v));        // microseconds
  if (std::fabs(v) >= 1e11) return absl::FromUnixMicros(static_cast<int64_t>(v * 1e3));  // milliseconds
  return absl::FromUnixMicros(static_cast<int64_t>(std::llround(v * 1e6)));              // seconds
}

absl::StatusOr<absl::Time> TimeField(const std::string& field, const Value& v) {
  if (v.kind_case() == Value::kNumberValue) {
    if (std::optional<absl::Time> t = EpochNumberToTime(v.number_value())) return *t;
  }
  if (v.kind_case() == Value::kStringValue) {
    absl::StatusOr<absl::Time> t = ParseTimeText(v.string_value());
    if (t.ok()) return *t;
  }
  return FieldError(field, absl::StrCat("must be an RFC 3339 time or epoch seconds/milliseconds, got ", Describe(v)));
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) {
  const int64_t us = absl::ToUnixMicros(t);
  int64_t seconds = us / 1'000'000;
  int64_t micros = us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    --seconds;
  }
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(micros * 1000));
}

}  // namespace

absl::StatusOr<absl::Time> ParseTimeText(absl::string_view text) {
  const std::string s(absl::StripAsciiWhitespace(text));
  double number;
  if (!s.empty() && absl::SimpleAtod(s, &number) && std::isfinite(number) &&
      s.find_first_not_of("0123456789.-+eE") == std::string::npos) {
    if (std::optional<absl::Time> t = EpochNumberToTime(number)) return *t;
  }
  absl::Time t;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, s, &t, &error)) return t;
  for (const char* format : {"%Y-%m-%dT%H:%M:%E*S", "%Y-%m-%d %H:%M:%E*S%Ez", "%Y-%m-%d %H:%M:%E*S", "%Y-%m-%d"}) {
    std::string ignored;
    if (absl::ParseTime(format, s, absl::UTCTimeZone(), &t, &ignored)) return t;
  }
  return absl::InvalidArgumentError(absl::StrCat("not a time (RFC 3339 or epoch seconds/milliseconds): \"", s, "\""));
}

absl::StatusOr<TradeOutcome> ParseLegacyTradeLine(absl::string_view line) {
  Struct object;
  google::protobuf::util::JsonParseOptions parse_options;
  const auto status = google::protobuf::util::JsonStringToMessage(std::string(line), &object, parse_options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("not a JSON object: ", std::string(status.message())));
  }
  TradeOutcome trade;
  std::string used;

  const Value* v = Lookup(object, {"trade_id", "id"}, &used);
  if (v == nullptr) return FieldError(used, AlsoAccepted({"trade_id", "id"}));
  absl::StatusOr<std::string> text = StringField(used, *v, /*allow_number=*/true);
  if (!text.ok()) return text.status();
  if (text->empty()) return FieldError(used, "must not be empty");
  trade.set_trade_id(*text);

  v = Lookup(object, {"symbol"}, &used);
  if (v == nullptr) return FieldError(used, "missing");
  text = StringField(used, *v, /*allow_number=*/false);
  if (!text.ok()) return text.status();
  trade.set_symbol(*text);

  v = Lookup(object, {"model_id", "model"}, &used);
  if (v != nullptr) {
    text = StringField(used, *v, /*allow_number=*/false);
    if (!text.ok()) return text.status();
    trade.set_model_id(*text);
  }

  v = Lookup(object, {"confidence"}, &used);
  if (v == nullptr) return FieldError(used, "missing");
  absl::StatusOr<double> number = NumberField(used, *v);
  if (!number.ok()) return number.status();
  trade.set_confidence(*number);

  v = Lookup(object, {"outcome"}, &used);
  if (v == nullptr) return FieldError(used, "missing");
  if (v->kind_case() != Value::kStringValue) {
    return FieldError(used, absl::StrCat("must be WIN, LOSS or NEUTRAL, got ", Describe(*v)));
  }
  const std::string outcome = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(v->string_value()));
  if (outcome == "WIN") {
    trade.set_outcome(TradeOutcome::WIN);
  } else if (outcome == "LOSS") {
    trade.set_outcome(TradeOutcome::LOSS);
  } else if (outcome == "NEUTRAL") {
    trade.set_outcome(TradeOutcome::NEUTRAL);
  } else {
    return FieldError(used, absl::StrCat("must be WIN, LOSS or NEUTRAL, got ", Describe(*v)));
  }

  v = Lookup(object, {"pnl"}, &used);
  if (v != nullptr) {
    number = NumberField(used, *v);
    if (!number.ok()) return number.status();
    trade.set_pnl(*number);
  }

  v = Lookup(object, {"opened_at", "entry_time"}, &used);
  if (v != nullptr) {
    absl::StatusOr<absl::Time> t = TimeField(used, *v);
    if (!t.ok()) return t.status();
    SetTimestamp(*t, trade.mutable_opened_at());
  }

  v = Lookup(object, {"closed_at", "exit_time", "timestamp"}, &used);
  if (v == nullptr) return FieldError(used, AlsoAccepted({"closed_at", "exit_time", "timestamp"}));
  absl::StatusOr<absl::Time> closed = TimeField(used, *v);
  if (!closed.ok()) return closed.status();
  SetTimestamp(*closed, trade.mutable_closed_at());

  v = Lookup(object, {"side"}, &used);
  if (v != nullptr) {
    const std::string side =
        v->kind_case() == Value::kStringValue ? absl::AsciiStrToUpper(absl::StripAsciiWhitespace(v->string_value())) : "";
    if (side == "LONG" || side == "BUY") {
      trade.set_side(TradeOutcome::LONG);
    } else if (side == "SHORT" || side == "SELL") {
      trade.set_side(TradeOutcome::SHORT);
    } else if (!side.empty() || v->kind_case() != Value::kStringValue) {
      return FieldError(used, absl::StrCat("must be LONG or SHORT (or BUY/SELL), got ", Describe(*v)));
    }
  }

  v = Lookup(object, {"model_confidences", "models"}, &used);
  if (v != nullptr) {
    if (v->kind_case() != Value::kStructValue) {
      return FieldError(used, absl::StrCat("must be an object of model name to confidence, got ", Describe(*v)));
    }
    // In name order: a map's iteration order differs between reads, and the same line must always get the
    // same message (the fuzzer found two reads naming two different bad models).
    std::vector<std::pair<const std::string*, const Value*>> models;
    models.reserve(v->struct_value().fields().size());
    for (const auto& [name, value] : v->struct_value().fields()) models.emplace_back(&name, &value);
    std::sort(models.begin(), models.end(), [](const auto& a, const auto& b) { return *a.first < *b.first; });
    for (const auto& [name, value] : models) {
      absl::StatusOr<double> c = NumberField(absl::StrCat(used, ".", *name), *value);
      if (!c.ok()) return c.status();
      (*trade.mutable_model_confidences())[*name] = *c;
    }
  }
  return trade;
}

LegacyTradeLog ParseLegacyTradeLog(std::istream& in) {
  LegacyTradeLog log;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    ++log.lines;
    absl::StatusOr<TradeOutcome> trade = ParseLegacyTradeLine(line);
    if (!trade.ok()) {
      log.errors.push_back({line_no, std::string(trade.status().message())});
      continue;
    }
    log.trades.push_back(*std::move(trade));
    log.trade_lines.push_back(line_no);
  }
  return log;
}

}  // namespace clm::client
