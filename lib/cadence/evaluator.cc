#include "lib/cadence/evaluator.h"

#include "google/protobuf/util/time_util.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "lib/cadence/policy.h"

namespace clm::cadence {
namespace {

using ::clm::v1::CadencePolicy;
using ::clm::v1::CadenceReport;
using ::clm::v1::LevelPolicy;

constexpr double kMicrosPerDay = 86400.0 * 1e6;

void SetTimestamp(int64_t micros, google::protobuf::Timestamp* ts) {
  *ts = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(micros);
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) { SetTimestamp(absl::ToUnixMicros(t), ts); }

std::string Fixed(double value, int decimals) { return absl::StrFormat("%.*f", decimals, value); }

// Renders a failed `current >= required` comparison with the fewest decimals (at least `decimals`) that
// still show the two values differ, so "2.96 of 3.0 days" never reads "3.0 of 3.0".
std::pair<std::string, std::string> FormatCompared(double current, double required, int decimals,
                                                   bool passed) {
  int d = decimals;
  if (!passed) {
    while (d < 6 && Fixed(current, d) == Fixed(required, d)) ++d;
  }
  return {Fixed(current, d), Fixed(required, decimals)};
}

std::string Pct(double fraction) { return absl::StrCat(Fixed(fraction * 100.0, 1), "%"); }

std::string Hours(int64_t seconds) { return absl::StrCat(Fixed(seconds / 3600.0, 1), "h"); }

double Ratio(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

// One requirement of a level, checked and described both ways.
struct Requirement {
  bool met;
  std::string met_text;
  std::string unmet_text;
};

Requirement TradesRequirement(uint64_t total, int64_t min_trades) {
  const bool met = total >= static_cast<uint64_t>(min_trades);
  return {met, absl::StrCat(total, " trades (need ", min_trades, ")"),
          absl::StrCat("too few trades: ", total, " of ", min_trades)};
}

Requirement DaysRequirement(int64_t span_us, double span_days, double min_days) {
  const bool met = static_cast<double>(span_us) >= min_days * kMicrosPerDay;
  auto [cur, req] = FormatCompared(span_days, min_days, 1, met);
  return {met, absl::StrCat(cur, " days (need ", req, ")"), absl::StrCat("too few days: ", cur, " of ", req)};
}

Requirement ShareRequirement(absl::string_view label, double share, double min_share) {
  const bool met = share >= min_share;
  auto [cur, req] = FormatCompared(share * 100.0, min_share * 100.0, 1, met);
  return {met, absl::StrCat(label, " share ", cur, "% (need ", req, "%)"),
          absl::StrCat(label, " share ", cur, "% below ", req, "%")};
}

void AddGate(absl::string_view name, double current, double required, bool passed, std::string detail,
             CadenceReport* report) {
  auto* gate = report->add_gates();
  gate->set_name(std::string(name));
  gate->set_current(current);
  gate->set_required(required);
  gate->set_passed(passed);
  gate->set_detail(std::move(detail));
}

std::string ScopeText(const CadenceReport& report) {
  std::vector<std::string> parts;
  if (!report.symbol().empty()) parts.push_back(absl::StrCat("symbol=", report.symbol()));
  if (!report.model_id().empty()) parts.push_back(absl::StrCat("model_id=", report.model_id()));
  return parts.empty() ? "all trades" : absl::StrJoin(parts, ", ");
}

std::string TriggerShort(const clm::v1::TriggerStatus& t) {
  return absl::StrCat(TriggerName(t.type()), " ", t.detail());
}

std::string LevelAllows(clm::v1::AuthorizationLevel level) {
  switch (level) {
    case clm::v1::CALIBRATION:
      return "run calibration jobs and read their reports; nothing is deployed";
    case clm::v1::SHADOW:
      return "deploy a deployment-ready job into shadow (scored live beside production, not used by engines); "
             "promote it to production once it has shadow evidence, or approve into production with skip_shadow "
             "(a person's audited override)";
    case clm::v1::PRODUCTION:
      return "also deploy the job's ensemble weights with a production calibration, with a person's approval";
    default:
      return "";
  }
}

std::string Summary(const CadenceReport& r) {
  const auto& d = r.data();
  int passed = 0;
  for (const auto& g : r.gates()) passed += g.passed() ? 1 : 0;
  std::vector<std::string> levels;
  for (const auto& l : r.levels()) {
    levels.push_back(absl::StrCat(LevelName(l.level()), l.authorized() ? " yes" : " no",
                                  l.manual_approval_required() ? " (manual approval)" : ""));
  }
  std::string trigger;
  if (r.trigger_fired()) {
    trigger = absl::StrCat(TriggerName(r.fired_trigger().type()), " fired ", r.fired_trigger().detail());
  } else {
    trigger = absl::StrCat("no trigger (", TriggerShort(r.triggers(0)), ")");
  }
  std::string prefix =
      r.symbol().empty() && r.model_id().empty() ? "" : absl::StrCat("[", ScopeText(r), "] ");
  return absl::StrCat(prefix, d.total_trades(), " trades over ", Fixed(d.span_days(), 1), " days (WIN ",
                      Pct(d.win_share()), ", LOSS ", Pct(d.loss_share()), ", NEUTRAL ",
                      Pct(d.neutral_share()), ", win rate ", Pct(d.win_rate()), "); gates ", passed, "/",
                      r.gates_size(), " passed; ", absl::StrJoin(levels, ", "), "; ", trigger, "; mode ",
                      ModeName(r.mode()), "; ", r.ready() ? "ready" : "not ready");
}

std::string NextAction(const CadenceReport& r) {
  if (!r.all_gates_passed()) {
    std::vector<std::string> failing;
    for (const auto& g : r.gates()) {
      if (!g.passed()) failing.push_back(g.detail());
    }
    return absl::StrCat("Wait for more data: ", absl::StrJoin(failing, "; "));
  }
  const auto& calibration = r.levels(0);
  if (!calibration.authorized()) {
    return absl::StrCat("Wait for more data: CALIBRATION ", calibration.reason());
  }
  if (!r.trigger_fired()) {
    std::vector<std::string> parts;
    for (const auto& t : r.triggers()) parts.push_back(TriggerShort(t));
    return absl::StrCat("Nothing due yet: ", absl::StrJoin(parts, "; "));
  }
  const std::string fired = absl::StrCat(TriggerName(r.fired_trigger().type()), " trigger fired (",
                                         r.fired_trigger().detail(), ")");
  switch (r.mode()) {
    case clm::v1::AUTO_CALIBRATE:
      return absl::StrCat(fired,
                          ": the monitor submits a calibration job; approve its result into shadow by "
                          "hand");
    case clm::v1::AUTO_SHADOW:
      return absl::StrCat(fired,
                          ": the monitor submits a calibration job and approves it into shadow if it "
                          "passes safety validation");
    default:
      return absl::StrCat(fired,
                          ": manual intervention required: submit a calibration job, or set mode "
                          "AUTO_CALIBRATE to let the monitor submit it");
  }
}

}  // namespace

CadenceReport Evaluate(const CadencePolicy& given_policy, const DataSnapshot& data,
                       const TrainingState& training, clm::v1::LearningMode mode, absl::Time now,
                       const std::string& scope_symbol, const std::string& scope_model_id) {
  const CadencePolicy policy = ApplyDefaults(given_policy);
  CadenceReport report;
  SetTimestamp(now, report.mutable_generated_at());
  report.set_symbol(scope_symbol);
  report.set_model_id(scope_model_id);
  report.set_mode(mode);

  // Data quality.
  const bool has_trades = data.total > 0;
  const int64_t span_us =
      has_trades ? std::max<int64_t>(0, data.last_closed_at_us - data.first_closed_at_us) : 0;
  const double span_days = static_cast<double>(span_us) / kMicrosPerDay;
  auto* q = report.mutable_data();
  q->set_total_trades(data.total);
  q->set_wins(data.wins);
  q->set_losses(data.losses);
  q->set_neutrals(data.neutrals);
  q->set_win_rate(Ratio(data.wins, data.wins + data.losses));
  q->set_loss_rate(Ratio(data.losses, data.wins + data.losses));
  q->set_win_share(Ratio(data.wins, data.total));
  q->set_loss_share(Ratio(data.losses, data.total));
  q->set_neutral_share(Ratio(data.neutrals, data.total));
  q->set_span_days(span_days);
  if (has_trades) {
    SetTimestamp(data.first_closed_at_us, q->mutable_first_closed_at());
    SetTimestamp(data.last_closed_at_us, q->mutable_last_closed_at());
  }
  std::vector<std::pair<std::string, uint64_t>> symbols = data.symbols;
  std::sort(symbols.begin(), symbols.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  for (const auto& [symbol, count] : symbols) {
    auto* s = q->add_symbols();
    s->set_symbol(symbol);
    s->set_trades(count);
  }
  std::vector<std::string> models = data.model_ids;
  std::sort(models.begin(), models.end());
  for (auto& m : models) q->add_model_ids(std::move(m));

  // Gates.
  const auto& g = policy.gates();
  {
    const Requirement trades = TradesRequirement(data.total, g.min_total_trades());
    AddGate("total_trades", static_cast<double>(data.total), static_cast<double>(g.min_total_trades()),
            trades.met, absl::StrCat(data.total, " trades, need ", g.min_total_trades(), "+"), &report);
    const Requirement days = DaysRequirement(span_us, span_days, g.min_span_days());
    auto [cur_days, req_days] = FormatCompared(span_days, g.min_span_days(), 1, days.met);
    AddGate("span_days", span_days, g.min_span_days(), days.met,
            absl::StrCat(cur_days, " days, need ", req_days, "+"), &report);
    for (const auto& [name, label, share, min_share] :
         {std::tuple<const char*, const char*, double, double>{"win_share", "WIN", q->win_share(),
                                                               g.min_win_share()},
          std::tuple<const char*, const char*, double, double>{"loss_share", "LOSS", q->loss_share(),
                                                               g.min_loss_share()}}) {
      const bool met = share >= min_share;
      auto [cur, req] = FormatCompared(share * 100.0, min_share * 100.0, 1, met);
      AddGate(name, share, min_share, met, absl::StrCat(label, " share ", cur, "%, need ", req, "%+"),
              &report);
    }
  }
  bool all_gates = true;
  for (const auto& gate : report.gates()) all_gates = all_gates && gate.passed();
  report.set_all_gates_passed(all_gates);

  // Authorization levels, cumulative.
  const std::pair<clm::v1::AuthorizationLevel, const LevelPolicy*> levels[] = {
      {clm::v1::CALIBRATION, &policy.levels().calibration()},
      {clm::v1::SHADOW, &policy.levels().shadow()},
      {clm::v1::PRODUCTION, &policy.levels().production()},
  };
  bool lower_authorized = true;
  clm::v1::AuthorizationLevel lower = clm::v1::AUTHORIZATION_LEVEL_UNSPECIFIED;
  for (const auto& [level, lp] : levels) {
    std::vector<Requirement> reqs;
    if (!lower_authorized) reqs.push_back({false, "", absl::StrCat(LevelName(lower), " not authorized")});
    reqs.push_back(TradesRequirement(data.total, lp->min_total_trades()));
    if (lp->min_span_days() > 0) reqs.push_back(DaysRequirement(span_us, span_days, lp->min_span_days()));
    if (lp->require_diversity()) {
      reqs.push_back(ShareRequirement("WIN", q->win_share(), g.min_win_share()));
      reqs.push_back(ShareRequirement("LOSS", q->loss_share(), g.min_loss_share()));
    }
    std::vector<std::string> met;
    std::vector<std::string> unmet;
    for (const Requirement& r : reqs) {
      if (r.met) {
        met.push_back(r.met_text);
      } else {
        unmet.push_back(r.unmet_text);
      }
    }
    const bool authorized = unmet.empty();
    auto* status = report.add_levels();
    status->set_level(level);
    status->set_authorized(authorized);
    status->set_manual_approval_required(lp->require_manual_approval());
    std::string reason = authorized ? absl::StrCat("authorized: ", absl::StrJoin(met, ", "))
                                    : absl::StrCat("not authorized: ", absl::StrJoin(unmet, "; "));
    if (lp->require_manual_approval()) absl::StrAppend(&reason, "; manual approval required");
    status->set_reason(std::move(reason));
    status->set_allows(LevelAllows(level));
    if (authorized) report.set_highest_authorized_level(level);
    lower_authorized = authorized;
    lower = level;
  }

  // Triggers.
  const auto& t = policy.triggers();
  const uint64_t fresh = data.new_trades_since_training;
  const bool trained = training.last_training_at_us != 0;
  {
    auto* batch = report.add_triggers();
    batch->set_type(clm::v1::TRIGGER_BATCH);
    batch->set_new_trades_since_training(fresh);
    batch->set_threshold(static_cast<uint64_t>(t.batch_new_trades()));
    batch->set_fired(fresh >= static_cast<uint64_t>(t.batch_new_trades()));
    batch->set_detail(absl::StrCat(fresh, "/", t.batch_new_trades(), " new trades"));
  }
  {
    auto* time = report.add_triggers();
    time->set_type(clm::v1::TRIGGER_TIME);
    time->set_new_trades_since_training(fresh);
    time->set_threshold(static_cast<uint64_t>(t.time_min_new_trades()));
    time->set_max_interval_seconds(t.time_max_interval_seconds());
    // Never trained: the interval runs from the first trade, the oldest data nobody has learned from.
    const bool has_reference = trained || has_trades;
    const int64_t reference_us = trained ? training.last_training_at_us : data.first_closed_at_us;
    const int64_t elapsed_us =
        has_reference ? std::max<int64_t>(0, absl::ToUnixMicros(now) - reference_us) : 0;
    const int64_t elapsed_s = elapsed_us / 1'000'000;
    time->set_elapsed_seconds(elapsed_s);
    const bool interval_passed =
        has_reference && elapsed_us >= t.time_max_interval_seconds() * int64_t{1'000'000};
    time->set_fired(interval_passed && fresh >= static_cast<uint64_t>(t.time_min_new_trades()));
    time->set_detail(has_reference
                         ? absl::StrCat(Hours(elapsed_s),
                                        trained ? " since last training" : " since first trade", " (max ",
                                        Hours(t.time_max_interval_seconds()), "), ", fresh, "/",
                                        t.time_min_new_trades(), " new trades")
                         : absl::StrCat("no trades yet (max ", Hours(t.time_max_interval_seconds()), ")"));
  }
  for (const auto& trigger : report.triggers()) {
    if (trigger.fired()) {
      report.set_trigger_fired(true);
      *report.mutable_fired_trigger() = trigger;
      break;
    }
  }

  // Training history.
  if (trained) {
    SetTimestamp(training.last_training_at_us, report.mutable_last_training_at());
    report.set_seconds_since_last_training(
        std::max<int64_t>(0, (absl::ToUnixMicros(now) - training.last_training_at_us) / 1'000'000));
  }
  report.set_total_trainings(training.total_trainings);

  report.set_ready(report.trigger_fired() && all_gates && report.levels(0).authorized());
  report.set_next_action(NextAction(report));
  report.set_summary(Summary(report));
  return report;
}

std::string FormatReportText(const CadenceReport& r) {
  const auto& d = r.data();
  auto ts = [](const google::protobuf::Timestamp& t) {
    return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(t.seconds()), absl::UTCTimeZone());
  };
  std::string out = absl::StrCat("Cadence report (", ScopeText(r), ") at ", ts(r.generated_at()), "\n");
  absl::StrAppend(&out, "Data: ", d.total_trades(), " trades over ", Fixed(d.span_days(), 1),
                  " days: ", d.wins(), " WIN, ", d.losses(), " LOSS, ", d.neutrals(), " NEUTRAL\n");
  absl::StrAppend(&out, "  win rate ", Pct(d.win_rate()), ", loss rate ", Pct(d.loss_rate()), "; shares WIN ",
                  Pct(d.win_share()), ", LOSS ", Pct(d.loss_share()), ", NEUTRAL ", Pct(d.neutral_share()),
                  "\n");
  if (d.total_trades() > 0) {
    absl::StrAppend(&out, "  first trade ", ts(d.first_closed_at()), ", last trade ", ts(d.last_closed_at()),
                    "\n");
  }
  if (d.symbols_size() > 0) {
    std::vector<std::string> symbols;
    for (const auto& s : d.symbols()) symbols.push_back(absl::StrCat(s.symbol(), " ", s.trades()));
    absl::StrAppend(&out, "  symbols: ", absl::StrJoin(symbols, ", "), "\n");
  }
  if (d.model_ids_size() > 0) {
    absl::StrAppend(&out, "  model ids: ", absl::StrJoin(d.model_ids(), ", "), "\n");
  }
  absl::StrAppend(&out, "Gates:", r.all_gates_passed() ? " all passed" : " not all passed", "\n");
  for (const auto& g : r.gates()) {
    absl::StrAppend(&out, "  [", g.passed() ? "PASS" : "FAIL", "] ", g.name(), ": ", g.detail(), "\n");
  }
  absl::StrAppend(&out, "Levels:\n");
  for (const auto& l : r.levels()) {
    absl::StrAppend(&out, "  ", LevelName(l.level()), ": ", l.reason(), "\n");
    if (!l.allows().empty()) absl::StrAppend(&out, "    allows: ", l.allows(), "\n");
  }
  absl::StrAppend(&out, "Triggers:\n");
  for (const auto& t : r.triggers()) {
    absl::StrAppend(&out, "  ", TriggerName(t.type()), ": ", t.fired() ? "FIRED" : "not fired", " (",
                    t.detail(), ")\n");
  }
  absl::StrAppend(&out, "Mode: ", ModeName(r.mode()), "; last training: ",
                  r.has_last_training_at() ? ts(r.last_training_at()) : std::string("never"),
                  "; total trainings: ", r.total_trainings(), "\n");
  absl::StrAppend(&out, "Ready: ", r.ready() ? "yes" : "no", "\n");
  absl::StrAppend(&out, "Next action: ", r.next_action(), "\n");
  return out;
}

}  // namespace clm::cadence
