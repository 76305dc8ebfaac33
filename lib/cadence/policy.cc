#include "lib/cadence/policy.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/common/file.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace clm::cadence {
namespace {

using ::clm::v1::CadencePolicy;
using ::clm::v1::LevelPolicy;

constexpr double kMaxSpanDays = 3650.0;

LevelPolicy MakeLevel(int64_t min_trades, double min_days, bool diversity, bool manual) {
  LevelPolicy level;
  level.set_min_total_trades(min_trades);
  level.set_min_span_days(min_days);
  level.set_require_diversity(diversity);
  level.set_require_manual_approval(manual);
  return level;
}

// Copies each field of `defaults` that `given` leaves unset. Written per field (not MergeFrom) because
// merging would overwrite set fields with defaults.
void FillLevel(const LevelPolicy& defaults, LevelPolicy* given) {
  if (!given->has_min_total_trades()) given->set_min_total_trades(defaults.min_total_trades());
  if (!given->has_min_span_days()) given->set_min_span_days(defaults.min_span_days());
  if (!given->has_require_diversity()) given->set_require_diversity(defaults.require_diversity());
  if (!given->has_require_manual_approval()) {
    given->set_require_manual_approval(defaults.require_manual_approval());
  }
}

absl::Status CheckCount(absl::string_view field, int64_t value, int64_t min, int64_t max) {
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be within [", min, ", ", max, "], got ", value));
  }
  return absl::OkStatus();
}

absl::Status CheckReal(absl::string_view field, double value, double min, double max) {
  // NaN fails both comparisons, so test for the accepted range rather than for its complement.
  if (!(value >= min && value <= max)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be within [", min, ", ", max, "], got ", value));
  }
  return absl::OkStatus();
}

absl::Status CheckLevel(absl::string_view name, const LevelPolicy& level) {
  if (absl::Status s = CheckCount(absl::StrCat("levels.", name, ".min_total_trades"),
                                  level.min_total_trades(), 0, 1'000'000'000'000);
      !s.ok()) {
    return s;
  }
  return CheckReal(absl::StrCat("levels.", name, ".min_span_days"), level.min_span_days(), 0.0, kMaxSpanDays);
}

class CollectingErrorCollector final : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {
    // The parser counts from 0; editors and operators count from 1.
    errors_.push_back(absl::StrCat("line ", line + 1, ", column ", column + 1, ": ", message));
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::string> errors_;
};

}  // namespace

CadencePolicy DefaultPolicy() {
  CadencePolicy policy;
  auto* gates = policy.mutable_gates();
  gates->set_min_total_trades(kDefaultMinTotalTrades);
  gates->set_min_span_days(kDefaultMinSpanDays);
  gates->set_min_win_share(kDefaultMinWinShare);
  gates->set_min_loss_share(kDefaultMinLossShare);
  auto* levels = policy.mutable_levels();
  *levels->mutable_calibration() = MakeLevel(kDefaultCalibrationMinTrades, 0.0, true, false);
  *levels->mutable_shadow() = MakeLevel(kDefaultShadowMinTrades, kDefaultShadowMinSpanDays, false, false);
  *levels->mutable_production() =
      MakeLevel(kDefaultProductionMinTrades, kDefaultProductionMinSpanDays, false, true);
  auto* triggers = policy.mutable_triggers();
  triggers->set_batch_new_trades(kDefaultBatchNewTrades);
  triggers->set_time_max_interval_seconds(kDefaultTimeMaxIntervalSeconds);
  triggers->set_time_min_new_trades(kDefaultTimeMinNewTrades);
  policy.set_default_mode(clm::v1::LOGGING_ONLY);
  auto* monitor = policy.mutable_monitor();
  monitor->set_interval_seconds(kDefaultMonitorIntervalSeconds);
  monitor->set_nudge_debounce_ms(kDefaultNudgeDebounceMs);
  monitor->set_history_limit(kDefaultHistoryLimit);
  return policy;
}

CadencePolicy ApplyDefaults(const CadencePolicy& given) {
  const CadencePolicy d = DefaultPolicy();
  CadencePolicy p = given;
  auto* g = p.mutable_gates();
  if (!g->has_min_total_trades()) g->set_min_total_trades(d.gates().min_total_trades());
  if (!g->has_min_span_days()) g->set_min_span_days(d.gates().min_span_days());
  if (!g->has_min_win_share()) g->set_min_win_share(d.gates().min_win_share());
  if (!g->has_min_loss_share()) g->set_min_loss_share(d.gates().min_loss_share());
  FillLevel(d.levels().calibration(), p.mutable_levels()->mutable_calibration());
  FillLevel(d.levels().shadow(), p.mutable_levels()->mutable_shadow());
  FillLevel(d.levels().production(), p.mutable_levels()->mutable_production());
  auto* t = p.mutable_triggers();
  if (!t->has_batch_new_trades()) t->set_batch_new_trades(d.triggers().batch_new_trades());
  if (!t->has_time_max_interval_seconds()) {
    t->set_time_max_interval_seconds(d.triggers().time_max_interval_seconds());
  }
  if (!t->has_time_min_new_trades()) t->set_time_min_new_trades(d.triggers().time_min_new_trades());
  if (!p.has_default_mode()) p.set_default_mode(d.default_mode());
  auto* m = p.mutable_monitor();
  if (!m->has_interval_seconds()) m->set_interval_seconds(d.monitor().interval_seconds());
  if (!m->has_nudge_debounce_ms()) m->set_nudge_debounce_ms(d.monitor().nudge_debounce_ms());
  if (!m->has_history_limit()) m->set_history_limit(d.monitor().history_limit());
  return p;
}

absl::Status ValidatePolicy(const CadencePolicy& given) {
  const CadencePolicy p = ApplyDefaults(given);
  const auto& g = p.gates();
  std::vector<absl::Status> checks = {
      CheckCount("gates.min_total_trades", g.min_total_trades(), 0, 1'000'000'000'000),
      CheckReal("gates.min_span_days", g.min_span_days(), 0.0, kMaxSpanDays),
      CheckReal("gates.min_win_share", g.min_win_share(), 0.0, 1.0),
      CheckReal("gates.min_loss_share", g.min_loss_share(), 0.0, 1.0),
  };
  for (const absl::Status& s : checks) {
    if (!s.ok()) return s;
  }
  // Both shares are fractions of the same total: minimums adding up to more than 1 can never pass.
  if (g.min_win_share() + g.min_loss_share() > 1.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("gates.min_win_share + gates.min_loss_share: must be at most 1, got ",
                     g.min_win_share() + g.min_loss_share()));
  }
  if (absl::Status s = CheckLevel("calibration", p.levels().calibration()); !s.ok()) return s;
  if (absl::Status s = CheckLevel("shadow", p.levels().shadow()); !s.ok()) return s;
  if (absl::Status s = CheckLevel("production", p.levels().production()); !s.ok()) return s;
  if (!p.levels().production().require_manual_approval()) {
    return absl::InvalidArgumentError(
        "levels.production.require_manual_approval: must be true, got false (production is never "
        "reached without a person's approval)");
  }
  const auto& t = p.triggers();
  checks = {
      CheckCount("triggers.batch_new_trades", t.batch_new_trades(), 1, 1'000'000'000'000),
      CheckCount("triggers.time_max_interval_seconds", t.time_max_interval_seconds(), 1, 10LL * 365 * 86400),
      CheckCount("triggers.time_min_new_trades", t.time_min_new_trades(), 1, 1'000'000'000'000),
  };
  for (const absl::Status& s : checks) {
    if (!s.ok()) return s;
  }
  if (!clm::v1::LearningMode_IsValid(p.default_mode()) ||
      p.default_mode() == clm::v1::LEARNING_MODE_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("default_mode: must be LOGGING_ONLY, AUTO_CALIBRATE or AUTO_SHADOW, got ",
                     ModeName(p.default_mode())));
  }
  const auto& m = p.monitor();
  checks = {
      CheckCount("monitor.interval_seconds", m.interval_seconds(), 1, 86400),
      CheckCount("monitor.nudge_debounce_ms", m.nudge_debounce_ms(), 0, 60000),
      CheckCount("monitor.history_limit", m.history_limit(), 1, 100000),
  };
  for (const absl::Status& s : checks) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<CadencePolicy> ResolvePolicy(const CadencePolicy& given) {
  if (absl::Status s = ValidatePolicy(given); !s.ok()) return s;
  return ApplyDefaults(given);
}

absl::StatusOr<CadencePolicy> ParsePolicyText(absl::string_view text) {
  CollectingErrorCollector errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  CadencePolicy policy;
  if (!parser.ParseFromString(std::string(text), &policy)) {
    if (errors.errors().empty()) return absl::InvalidArgumentError("policy text could not be parsed");
    return absl::InvalidArgumentError(absl::StrJoin(errors.errors(), "; "));
  }
  return ResolvePolicy(policy);
}

absl::StatusOr<CadencePolicy> LoadPolicyFile(const std::string& path) {
  absl::StatusOr<std::string> content = ReadFile(path);
  if (!content.ok()) return content.status();
  absl::StatusOr<CadencePolicy> policy = ParsePolicyText(*content);
  if (!policy.ok()) {
    return absl::Status(policy.status().code(), absl::StrCat(path, ": ", policy.status().message()));
  }
  return policy;
}

std::string ModeName(clm::v1::LearningMode mode) {
  switch (mode) {
    case clm::v1::LOGGING_ONLY:
      return "LOGGING_ONLY";
    case clm::v1::AUTO_CALIBRATE:
      return "AUTO_CALIBRATE";
    case clm::v1::AUTO_SHADOW:
      return "AUTO_SHADOW";
    default:
      return absl::StrCat("UNSPECIFIED(", static_cast<int>(mode), ")");
  }
}

std::string LevelName(clm::v1::AuthorizationLevel level) {
  switch (level) {
    case clm::v1::CALIBRATION:
      return "CALIBRATION";
    case clm::v1::SHADOW:
      return "SHADOW";
    case clm::v1::PRODUCTION:
      return "PRODUCTION";
    default:
      return "NONE";
  }
}

std::string TriggerName(clm::v1::TriggerType type) {
  switch (type) {
    case clm::v1::TRIGGER_BATCH:
      return "BATCH";
    case clm::v1::TRIGGER_TIME:
      return "TIME";
    default:
      return "NONE";
  }
}

}  // namespace clm::cadence
