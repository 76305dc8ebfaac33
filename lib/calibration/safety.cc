#include "lib/calibration/safety.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/calibration/calibrator.h"

namespace clm::calibration {
namespace {

constexpr int kGridPoints = 101;

}  // namespace

clm::v1::SafetyValidation ValidateSafety(const clm::v1::CalibrationResult& result, const ResolvedOptions& options,
                                         double min_confidence, double max_confidence) {
  clm::v1::SafetyValidation s;
  s.set_risk_formula(kRiskFormula);

  const uint64_t labelled = result.trades_used();
  if (labelled < static_cast<uint64_t>(options.min_labelled_trades)) {
    s.add_errors(absl::StrCat("too few labelled trades for the CALIBRATION level: ", labelled, " < ",
                              options.min_labelled_trades));
  }

  bool shift_warning = false;
  if (!result.has_global_map()) {
    s.add_errors("no calibration map was fitted");
  } else if (absl::Status v = ValidateMap(result.global_map()); !v.ok()) {
    s.add_errors(absl::StrCat("invalid calibration map: ", v.message()));
  } else {
    double lo = std::clamp(min_confidence, 0.0, 1.0);
    double hi = std::clamp(max_confidence, 0.0, 1.0);
    if (hi < lo) std::swap(lo, hi);
    // A grid over the range plus every isotonic threshold inside it: an isotonic map minus the identity is
    // piecewise linear, so its largest deviation lies on a threshold or an end of the range and the shift
    // below is exact; for a Platt map the grid bounds it to within a grid step.
    std::vector<double> points;
    points.reserve(kGridPoints + result.global_map().x_thresholds_size());
    for (int i = 0; i < kGridPoints; ++i) {
      points.push_back((i + 1 == kGridPoints) ? hi : lo + (hi - lo) * i / (kGridPoints - 1));
    }
    for (double x : result.global_map().x_thresholds()) {
      if (x > lo && x < hi) points.push_back(x);
    }
    std::sort(points.begin(), points.end());
    double prev = -1.0, max_shift = 0.0, at = lo;
    bool finite = true, monotone = true;
    for (double c : points) {
      const double p = Apply(result.global_map(), c);
      if (!std::isfinite(p) || p < 0.0 || p > 1.0) {
        finite = false;
        break;
      }
      if (p < prev) monotone = false;
      prev = p;
      if (std::fabs(p - c) > max_shift) {
        max_shift = std::fabs(p - c);
        at = c;
      }
    }
    if (!finite) {
      s.add_errors("calibration map gives a non-finite or out-of-range value");
    } else {
      if (!monotone) {
        s.add_errors("calibration map is not monotone: a higher confidence would get a lower probability");
      }
      s.set_max_shift(max_shift);
      if (max_shift > options.max_shift) {
        shift_warning = true;
        s.add_warnings(absl::StrFormat("large shift: confidence %.3f moves by %.3f (limit %.2f)", at, max_shift,
                                       options.max_shift));
      }
    }
  }

  const clm::v1::EvaluationResult& ev = result.evaluation();
  bool gap_warning = false, ci_warning = false;
  if (!ev.cross_validated()) {
    s.add_errors(absl::StrCat("no out-of-sample evaluation: ",
                              ev.note().empty() ? "cross-validation did not run" : ev.note()));
  } else {
    const double before = ev.out_of_sample_before().mse();
    const double after = ev.out_of_sample_after().mse();
    if (!(after < before)) {
      s.add_errors(absl::StrFormat("out-of-sample MSE not better: %.4f after vs %.4f before", after, before));
    }
    const double gap = ev.in_sample_improvement_pct() - ev.improvement_pct();
    if (gap > options.max_improvement_gap_pct) {
      gap_warning = true;
      s.add_warnings(absl::StrFormat(
          "possible over-fitting: in-sample improvement %.1f%% vs out-of-sample %.1f%% (gap above %.1f points)",
          ev.in_sample_improvement_pct(), ev.improvement_pct(), options.max_improvement_gap_pct));
    }
    if (ev.bootstrap_resamples() > 0 && !(ev.improvement_ci_low() > 0.0)) {
      ci_warning = true;
      s.add_warnings(absl::StrFormat(
          "improvement not significant: %.0f%% bootstrap interval [%.1f%%, %.1f%%] does not exclude 0",
          ev.ci_level() * 100.0, ev.improvement_ci_low(), ev.improvement_ci_high()));
    }
  }

  int thin = 0;
  for (const auto& b : result.reliability_before()) thin += b.thin() ? 1 : 0;
  if (thin > 0) {
    s.add_warnings(absl::StrCat(thin, " thin reliability bin(s) with fewer than ", options.min_bin_trades,
                                " trades: their calibration rests on little data"));
  }

  bool dominance_warning = false;
  if (labelled > 0) {
    const clm::v1::SliceResult* top = nullptr;
    for (const auto& slice : result.symbol_slices()) {
      if (top == nullptr || slice.labelled() > top->labelled()) top = &slice;
    }
    if (top != nullptr) {
      const double share = static_cast<double>(top->labelled()) / static_cast<double>(labelled);
      if (share > options.max_symbol_share) {
        dominance_warning = true;
        s.add_warnings(absl::StrFormat("%s dominates: %.1f%% of the labelled trades (limit %.0f%%)", top->key(),
                                       share * 100.0, options.max_symbol_share * 100.0));
      }
    }
  }

  // kRiskFormula, term by term.
  double risk = 1.0;
  if (s.errors_size() == 0) {
    risk = 0.30 * shift_warning + 0.25 * gap_warning + 0.20 * ci_warning + 0.15 * dominance_warning +
           0.10 * (thin > 0);
    risk = std::min(1.0, risk);
  }
  s.set_risk_score(risk);
  s.set_risk_level(risk < 0.25 ? "LOW" : (risk < 0.5 ? "MEDIUM" : "HIGH"));
  s.set_deployment_ready(s.errors_size() == 0);
  return s;
}

}  // namespace clm::calibration
