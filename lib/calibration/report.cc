#include "lib/calibration/report.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "lib/calibration/calibrator.h"

namespace clm::calibration {
namespace {

std::string Time(int64_t us) {
  return absl::FormatTime("%Y-%m-%d %H:%M UTC", absl::FromUnixMicros(us), absl::UTCTimeZone());
}

std::string Pct(double fraction) { return absl::StrFormat("%.1f%%", fraction * 100.0); }

std::string MethodName(clm::v1::CalibrationMethod m) {
  switch (m) {
    case clm::v1::PLATT:
      return "Platt scaling (sigmoid), guarded";
    case clm::v1::VENN_ABERS:
      return "Venn-Abers (inductive, two isotonic fits)";
    default:
      return "Isotonic regression, guarded";
  }
}

void AppendMetricsRow(std::string* out, const std::string& name, const clm::v1::Metrics& before,
                      const clm::v1::Metrics& after, double improvement) {
  absl::StrAppendFormat(out, "| %s | %d | %.4f | %.4f | %+.1f%% | %.4f / %.4f | %.4f / %.4f | %.4f / %.4f |\n",
                        name, before.count(), before.mse(), after.mse(), improvement, before.log_loss(),
                        after.log_loss(), before.ece(), after.ece(), before.mce(), after.mce());
}

void AppendSlices(std::string* out, const char* title,
                  const google::protobuf::RepeatedPtrField<clm::v1::SliceResult>& slices) {
  absl::StrAppend(out, "\n### ", title, "\n\n");
  if (slices.empty()) {
    absl::StrAppend(out, "None.\n");
    return;
  }
  absl::StrAppend(out,
                  "| Key | Labelled | Map | MSE before | MSE after (in-sample) | MSE after (out-of-sample) | "
                  "Improvement (out-of-sample) | Findings |\n|---|---|---|---|---|---|---|---|\n");
  for (const auto& s : slices) {
    std::string findings;
    for (const auto& f : s.findings()) absl::StrAppend(&findings, findings.empty() ? "" : "; ", f.text());
    absl::StrAppendFormat(out, "| %s | %d | %s | %.4f | %.4f | %s | %s | %s |\n", s.key(), s.labelled(),
                          s.uses_global_map() ? "global (too few trades)" : "own", s.before().mse(),
                          s.after().mse(),
                          s.out_of_sample() ? absl::StrFormat("%.4f", s.out_of_sample_mse_after()) : "n/a",
                          s.out_of_sample() ? absl::StrFormat("%+.1f%%", s.improvement_pct()) : "n/a",
                          findings.empty() ? "none" : findings);
  }
}

void AppendBins(std::string* out, const google::protobuf::RepeatedPtrField<clm::v1::ReliabilityBin>& bins) {
  for (const auto& b : bins) {
    if (b.count() == 0) continue;
    absl::StrAppendFormat(out, "| %.2f-%.2f | %d%s | %s | %s | %+.1f pts |\n", b.lo(), b.hi(), b.count(),
                          b.thin() ? " (thin)" : "", Pct(b.mean_predicted()), Pct(b.observed_rate()),
                          b.gap() * 100.0);
  }
}

// What the engine gets: the probability and its bounds at each knot, with the trades behind it.
void AppendDeployedMap(std::string* out, const clm::v1::CalibrationMap& map) {
  if (map.method() == clm::v1::VENN_ABERS) {
    absl::StrAppendFormat(out,
                          "Venn-Abers on %d calibration trades (%d distinct confidences where it changes): each "
                          "confidence gets the interval [p0, p1] and the probability p1 / (1 - p0 + p1).\n",
                          map.trained_on(), map.x_thresholds_size());
    return;
  }
  if (map.guard_x_size() == 0) {
    *out += "No bounds: the map predates guarded maps.\n";
    return;
  }
  absl::StrAppendFormat(out,
                        "Each segment starts from %.0f pseudo-trades at the base rate %.1f%%; bounds are the "
                        "%.0f%% posterior interval. The engine gets the probability and may size on the lower "
                        "bound.\n\n| Confidence | Probability | Lower | Upper | Trades |\n|---|---|---|---|---|\n",
                        map.prior_trades(), map.prior_mean() * 100.0, map.interval_level() * 100.0);
  const int n = map.guard_x_size();
  const int step = n > 40 ? (n + 39) / 40 : 1;  // at most about 40 rows
  for (int i = 0; i < n; i += step) {
    const Calibrated v = ApplyWithBounds(map, map.guard_x(i));
    absl::StrAppendFormat(out, "| %.4f | %.3f | %.3f | %.3f | %.0f |\n", map.guard_x(i), v.probability, v.lower,
                          v.upper, map.guard_trades(i));
  }
}

}  // namespace

std::string RenderMarkdown(const clm::v1::CalibrationResult& r) {
  std::string out = "# CLM Calibration Report\n\n## Summary\n\n";
  const auto& ev = r.evaluation();
  const auto& safety = r.safety();
  absl::StrAppend(&out, "- Method: ", MethodName(r.options().method()), "\n");
  absl::StrAppend(&out, "- Trades: ", r.trades_total(), " total, ", r.trades_used(), " labelled (", r.wins(),
                  " wins, ", r.losses(), " losses, ", r.neutrals(), " neutral; ", r.trades_excluded(),
                  " excluded)\n");
  if (r.trades_used() > 0) {
    absl::StrAppend(&out, "- Observed win rate: ", Pct(r.base_rate()), "\n");
    absl::StrAppend(&out, "- Period: ", Time(r.first_closed_at_us()), " to ", Time(r.last_closed_at_us()), "\n");
  }
  if (ev.cross_validated()) {
    absl::StrAppendFormat(&out,
                          "- Out-of-sample MSE before: %.4f / after: %.4f (%+.1f%%, %.0f%% interval %+.1f%% to "
                          "%+.1f%%)\n",
                          ev.out_of_sample_before().mse(), ev.out_of_sample_after().mse(), ev.improvement_pct(),
                          ev.ci_level() * 100.0, ev.improvement_ci_low(), ev.improvement_ci_high());
  } else if (!ev.note().empty()) {
    absl::StrAppend(&out, "- ", ev.note(), "\n");
  }
  absl::StrAppendFormat(&out, "- Deployment ready: %s (risk score %.2f, %s)\n",
                        safety.deployment_ready() ? "YES" : "NO", safety.risk_score(), safety.risk_level());

  out += "\n## MSE before/after\n\n";
  out += "| Evaluation | Trades | MSE before | MSE after | Improvement | Log loss before / after | "
         "ECE before / after | MCE before / after |\n|---|---|---|---|---|---|---|---|\n";
  AppendMetricsRow(&out, "In-sample", ev.in_sample_before(), ev.in_sample_after(), ev.in_sample_improvement_pct());
  if (ev.cross_validated()) {
    AppendMetricsRow(&out, absl::StrCat("Out-of-sample (walk-forward, ", ev.scored(), " trades)"),
                     ev.out_of_sample_before(), ev.out_of_sample_after(), ev.improvement_pct());
    absl::StrAppendFormat(&out,
                          "\nOut-of-sample improvement %+.1f%%, %.0f%% interval [%+.1f%%, %+.1f%%]. Scheme: %s. "
                          "Interval: %s. In-sample figures fit and score the same trades and overstate the "
                          "gain; decisions use the out-of-sample ones.\n\n",
                          ev.improvement_pct(), ev.ci_level() * 100.0, ev.improvement_ci_low(),
                          ev.improvement_ci_high(), ev.scheme(), ev.interval_method());
    out += "| Block | Scored period | Trained on | Scored | MSE before | MSE after |\n|---|---|---|---|---|---|\n";
    for (const auto& f : ev.fold_results()) {
      absl::StrAppendFormat(&out, "| %d | %s to %s | %d | %d | %.4f | %.4f |\n", f.index(),
                            Time(f.test_from_us()), Time(f.test_to_us()), f.train_count(), f.test_count(),
                            f.mse_before(), f.mse_after());
    }
  } else {
    absl::StrAppend(&out, "\n", ev.note(), "\n");
  }

  out += "\n## Reliability\n\n";
  out += "Raw confidences:\n\n| Predicted | Trades | Mean predicted | Observed win rate | Gap |\n"
         "|---|---|---|---|---|\n";
  AppendBins(&out, r.reliability_before());
  absl::StrAppend(&out, "\nAfter calibration (",
                  r.reliability_after_out_of_sample() ? "out of sample" : "in sample", "), by calibrated value:\n\n",
                  "| Calibrated | Trades | Mean calibrated | Observed win rate | Gap |\n|---|---|---|---|---|\n");
  AppendBins(&out, r.reliability_after());

  out += "\n## Findings\n\n";
  if (r.findings().empty()) {
    absl::StrAppendFormat(&out, "No range is over- or under-confident beyond the %.2f tolerance.\n",
                          r.options().tolerance());
  }
  for (const auto& f : r.findings()) absl::StrAppend(&out, "- ", f.text(), "\n");

  out += "\n## Slices\n";
  AppendSlices(&out, "Symbols", r.symbol_slices());
  AppendSlices(&out, "Models", r.model_slices());

  out += "\n## Ensemble\n\n";
  const auto& en = r.ensemble();
  if (!en.has_model_data()) {
    absl::StrAppend(&out, en.note(), "\n");
  } else {
    out += "| Model | Trades | Brier | Base-rate Brier | Skill | Current weight | Proposed weight |\n"
           "|---|---|---|---|---|---|---|\n";
    for (const auto& m : en.models()) {
      absl::StrAppendFormat(&out, "| %s | %d | %.4f | %.4f | %+.3f | %.3f | %.3f |\n", m.model(), m.count(),
                            m.brier(), m.base_rate_brier(), m.skill(), m.current_weight(), m.proposed_weight());
    }
    absl::StrAppendFormat(&out, "\nTotal weight change: %.4f (threshold %.2f). %s\n\nRule: %s\n",
                          en.total_weight_change(), en.threshold(), en.note(), en.weight_rule());
  }

  out += "\n## Deployed map\n\n";
  AppendDeployedMap(&out, r.global_map());

  out += "\n## Safety\n\n";
  absl::StrAppendFormat(&out, "- Risk Score: %.2f (%s)\n- Validation Errors: %d\n- Validation Warnings: %d\n",
                        safety.risk_score(), safety.risk_level(), safety.errors_size(), safety.warnings_size());
  absl::StrAppendFormat(&out, "- Max shift of a confidence: %.3f\n", safety.max_shift());
  absl::StrAppendFormat(&out, "- Widest interval: %.3f at confidence %.3f\n", safety.widest_interval(),
                        safety.widest_interval_at());
  absl::StrAppendFormat(&out, "- Largest shift on fewer than %d trades: %.3f at confidence %.3f\n",
                        r.options().min_bin_trades(), safety.thin_max_shift(), safety.thin_max_shift_at());
  absl::StrAppend(&out, "- Deployment Ready: ", safety.deployment_ready() ? "YES" : "NO", "\n");
  for (const auto& e : safety.errors()) absl::StrAppend(&out, "- ERROR: ", e, "\n");
  for (const auto& w : safety.warnings()) absl::StrAppend(&out, "- WARNING: ", w, "\n");
  absl::StrAppend(&out, "\nRisk formula: ", safety.risk_formula(), "\n");
  return out;
}

absl::StatusOr<std::string> RenderJson(const clm::v1::CalibrationResult& result) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(result, &json, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("calibration result: JSON serialisation failed: ", status.ToString()));
  }
  return json;
}

}  // namespace clm::calibration
