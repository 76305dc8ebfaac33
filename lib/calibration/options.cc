#include "lib/calibration/options.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace clm::calibration {
namespace {

absl::Status CheckIntRange(const char* field, int value, int lo, int hi) {
  if (value < lo || value > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.", field, ": must be within [", lo, ", ", hi, "], got ", value));
  }
  return absl::OkStatus();
}

// (lo, hi]: 0 is "default", so an explicit value must be positive.
absl::Status CheckPositiveRange(const char* field, double value, double hi) {
  if (!std::isfinite(value) || value <= 0.0 || value > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.", field, ": must be within (0, ", hi, "] (0 means the default), got ", value));
  }
  return absl::OkStatus();
}

}  // namespace

clm::v1::CalibrationOptions ResolvedOptions::ToProto() const {
  clm::v1::CalibrationOptions o;
  o.set_method(method);
  o.set_folds(folds);
  o.set_bins(bins);
  o.set_neutral_handling(neutral_handling);
  o.set_tolerance(tolerance);
  o.set_min_bin_trades(min_bin_trades);
  o.set_min_slice_trades(min_slice_trades);
  o.set_min_labelled_trades(min_labelled_trades);
  o.set_bootstrap_resamples(bootstrap_resamples);
  o.set_seed(seed);
  o.set_max_shift(max_shift);
  o.set_rebalance_threshold(rebalance_threshold);
  o.set_max_symbol_share(max_symbol_share);
  o.set_max_improvement_gap_pct(max_improvement_gap_pct);
  o.set_min_improvement_pct(min_improvement_pct);
  o.set_ci_level(ci_level);
  o.set_prior_trades(prior_trades);
  return o;
}

absl::StatusOr<ResolvedOptions> ResolveOptions(const clm::v1::CalibrationOptions& in) {
  ResolvedOptions r;
  switch (in.method()) {
    case clm::v1::CALIBRATION_METHOD_UNSPECIFIED:
    case clm::v1::ISOTONIC:
      r.method = clm::v1::ISOTONIC;
      break;
    case clm::v1::PLATT:
    case clm::v1::VENN_ABERS:
      r.method = in.method();
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "options.method: must be ISOTONIC, PLATT or VENN_ABERS, got ", static_cast<int>(in.method())));
  }
  switch (in.neutral_handling()) {
    case clm::v1::NEUTRAL_UNSPECIFIED:
    case clm::v1::NEUTRAL_EXCLUDE:
      r.neutral_handling = clm::v1::NEUTRAL_EXCLUDE;
      break;
    case clm::v1::NEUTRAL_AS_HALF:
    case clm::v1::NEUTRAL_AS_LOSS:
      r.neutral_handling = in.neutral_handling();
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("options.neutral_handling: must be NEUTRAL_EXCLUDE, NEUTRAL_AS_HALF or NEUTRAL_AS_LOSS, got ",
                       static_cast<int>(in.neutral_handling())));
  }
  absl::Status s;
  if (in.folds() != 0) {
    if (!(s = CheckIntRange("folds", in.folds(), 2, 100)).ok()) return s;
    r.folds = in.folds();
  }
  if (in.bins() != 0) {
    if (!(s = CheckIntRange("bins", in.bins(), 1, 1000)).ok()) return s;
    r.bins = in.bins();
  }
  if (in.tolerance() != 0.0) {
    if (!(s = CheckPositiveRange("tolerance", in.tolerance(), 1.0)).ok()) return s;
    r.tolerance = in.tolerance();
  }
  if (in.min_bin_trades() != 0) {
    if (!(s = CheckIntRange("min_bin_trades", in.min_bin_trades(), 1, 1000000)).ok()) return s;
    r.min_bin_trades = in.min_bin_trades();
  }
  if (in.min_slice_trades() != 0) {
    if (!(s = CheckIntRange("min_slice_trades", in.min_slice_trades(), 1, 100000000)).ok()) return s;
    r.min_slice_trades = in.min_slice_trades();
  }
  if (in.min_labelled_trades() != 0) {
    if (!(s = CheckIntRange("min_labelled_trades", in.min_labelled_trades(), 1, 100000000)).ok()) return s;
    r.min_labelled_trades = in.min_labelled_trades();
  }
  if (in.bootstrap_resamples() != 0) {
    if (!(s = CheckIntRange("bootstrap_resamples", in.bootstrap_resamples(), 100, 100000)).ok()) return s;
    r.bootstrap_resamples = in.bootstrap_resamples();
  }
  if (in.seed() != 0) r.seed = in.seed();
  if (in.max_shift() != 0.0) {
    if (!(s = CheckPositiveRange("max_shift", in.max_shift(), 1.0)).ok()) return s;
    r.max_shift = in.max_shift();
  }
  if (in.rebalance_threshold() != 0.0) {
    if (!(s = CheckPositiveRange("rebalance_threshold", in.rebalance_threshold(), 2.0)).ok()) return s;
    r.rebalance_threshold = in.rebalance_threshold();
  }
  if (in.max_symbol_share() != 0.0) {
    if (!(s = CheckPositiveRange("max_symbol_share", in.max_symbol_share(), 1.0)).ok()) return s;
    r.max_symbol_share = in.max_symbol_share();
  }
  if (in.max_improvement_gap_pct() != 0.0) {
    if (!(s = CheckPositiveRange("max_improvement_gap_pct", in.max_improvement_gap_pct(), 1000.0)).ok()) {
      return s;
    }
    r.max_improvement_gap_pct = in.max_improvement_gap_pct();
  }
  if (in.min_improvement_pct() != 0.0) {
    const double v = in.min_improvement_pct();
    if (!std::isfinite(v) || v < 0.0 || v >= 100.0) {
      return absl::InvalidArgumentError(
          absl::StrCat("options.min_improvement_pct: must be within [0, 100), got ", v));
    }
    r.min_improvement_pct = v;
  }
  if (in.ci_level() != 0.0) {
    const double v = in.ci_level();
    if (!std::isfinite(v) || v < 0.5 || v > 0.999) {
      return absl::InvalidArgumentError(
          absl::StrCat("options.ci_level: must be within [0.5, 0.999] (0 means the default), got ", v));
    }
    r.ci_level = v;
  }
  if (in.prior_trades() != 0.0) {
    if (!(s = CheckPositiveRange("prior_trades", in.prior_trades(), 1e6)).ok()) return s;
    r.prior_trades = in.prior_trades();
  }
  return r;
}

}  // namespace clm::calibration
