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

// The labelled trades behind the map's value at c: for a guarded map, the fewer of the two knots around c
// (a segment between knots interpolates both); otherwise the raw reliability bin holding c.
double EvidenceAt(const clm::v1::CalibrationResult& result, double c) {
  const clm::v1::CalibrationMap& map = result.global_map();
  const int n = std::min(map.guard_x_size(), map.guard_trades_size());
  if (n > 0) {
    const auto& x = map.guard_x();
    const int hi = static_cast<int>(std::lower_bound(x.begin(), x.begin() + n, c) - x.begin());
    if (hi < n && x[hi] == c) return map.guard_trades(hi);
    if (hi == 0) return map.guard_trades(0);
    if (hi == n) return map.guard_trades(n - 1);
    return std::min(map.guard_trades(hi - 1), map.guard_trades(hi));
  }
  for (const clm::v1::ReliabilityBin& bin : result.reliability_before()) {
    if (c >= bin.lo() && (c < bin.hi() || bin.hi() >= 1.0)) return static_cast<double>(bin.count());
  }
  return 0.0;
}

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
  bool thin_shift_warning = false;
  const clm::v1::CalibrationMap& map = result.global_map();
  if (!result.has_global_map()) {
    s.add_errors("no calibration map was fitted");
  } else if (absl::Status v = ValidateMap(map); !v.ok()) {
    s.add_errors(absl::StrCat("invalid calibration map: ", v.message()));
  } else {
    double lo = std::clamp(min_confidence, 0.0, 1.0);
    double hi = std::clamp(max_confidence, 0.0, 1.0);
    if (hi < lo) std::swap(lo, hi);
    // A grid over the range plus every knot inside it: an isotonic map and its bounds are piecewise linear
    // between knots, so their extremes lie on a knot or an end of the range and the figures below are exact;
    // for Platt and Venn-Abers maps the grid bounds them to within a grid step.
    std::vector<double> points;
    points.reserve(kGridPoints + map.x_thresholds_size() + map.guard_x_size());
    for (int i = 0; i < kGridPoints; ++i) {
      points.push_back((i + 1 == kGridPoints) ? hi : lo + (hi - lo) * i / (kGridPoints - 1));
    }
    for (const auto* knots : {&map.x_thresholds(), &map.guard_x()}) {
      for (double x : *knots) {
        if (x > lo && x < hi) points.push_back(x);
      }
    }
    std::sort(points.begin(), points.end());
    double prev = -1.0, max_shift = 0.0, at = lo, widest = 0.0, widest_at = lo, thin_shift = 0.0, thin_at = lo;
    bool finite = true, monotone = true, certain = false;
    for (double c : points) {
      const Calibrated p = ApplyWithBounds(map, c);
      if (!std::isfinite(p.probability) || p.probability < 0.0 || p.probability > 1.0) {
        finite = false;
        break;
      }
      if (p.probability <= 0.0 || p.probability >= 1.0) certain = true;
      if (p.probability < prev) monotone = false;
      prev = p.probability;
      const double shift = std::fabs(p.probability - c);
      if (shift > max_shift) {
        max_shift = shift;
        at = c;
      }
      if (p.upper - p.lower > widest) {
        widest = p.upper - p.lower;
        widest_at = c;
      }
      if (EvidenceAt(result, c) < options.min_bin_trades && shift > thin_shift) {
        thin_shift = shift;
        thin_at = c;
      }
    }
    if (!finite) {
      s.add_errors("calibration map gives a non-finite or out-of-range value");
    } else {
      if (!monotone) {
        s.add_errors("calibration map is not monotone: a higher confidence would get a lower probability");
      }
      if (certain) {
        s.add_errors("calibration map claims certainty: it gives a probability of exactly 0 or 1");
      }
      s.set_max_shift(max_shift);
      s.set_widest_interval(widest);
      s.set_widest_interval_at(widest_at);
      s.set_thin_max_shift(thin_shift);
      s.set_thin_max_shift_at(thin_at);
      if (max_shift > options.max_shift) {
        shift_warning = true;
        s.add_warnings(absl::StrFormat("large shift: confidence %.3f moves by %.3f (limit %.2f)", at, max_shift,
                                       options.max_shift));
      }
      if (thin_shift > options.tolerance) {
        thin_shift_warning = true;
        s.add_warnings(absl::StrFormat(
            "thin evidence: confidence %.3f moves by %.3f on fewer than %d trades", thin_at, thin_shift,
            options.min_bin_trades));
      }
    }
  }

  const clm::v1::EvaluationResult& ev = result.evaluation();
  bool gap_warning = false;
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
    // Significance: the whole interval must lie above the required improvement.
    if (ev.improvement_ci_high() < 0.0) {
      s.add_errors(absl::StrFormat(
          "calibration is significantly worse out of sample: %.0f%% interval of the improvement [%.1f%%, %.1f%%] "
          "lies below 0", ev.ci_level() * 100.0, ev.improvement_ci_low(), ev.improvement_ci_high()));
    } else if (!(ev.improvement_ci_low() > options.min_improvement_pct)) {
      s.add_errors(absl::StrFormat(
          "improvement not significant: %.0f%% interval of the out-of-sample improvement [%.1f%%, %.1f%%] does not "
          "lie above %g%% (min_improvement_pct)",
          ev.ci_level() * 100.0, ev.improvement_ci_low(), ev.improvement_ci_high(), options.min_improvement_pct));
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
    risk = 0.30 * shift_warning + 0.25 * gap_warning + 0.20 * thin_shift_warning + 0.15 * dominance_warning +
           0.10 * (thin > 0);
    risk = std::min(1.0, risk);
  }
  s.set_risk_score(risk);
  s.set_risk_level(risk < 0.25 ? "LOW" : (risk < 0.5 ? "MEDIUM" : "HIGH"));
  s.set_deployment_ready(s.errors_size() == 0);
  return s;
}

}  // namespace clm::calibration
