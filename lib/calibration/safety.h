#ifndef CLM_LIB_CALIBRATION_SAFETY_H_
#define CLM_LIB_CALIBRATION_SAFETY_H_

#include "clm/v1/calibration.pb.h"
#include "lib/calibration/options.h"

namespace clm::calibration {

// The risk score formula, stated in every result.
inline constexpr char kRiskFormula[] =
    "risk = 1 if any error; otherwise min(1, 0.30*[max shift > max_shift] + 0.25*[in-sample minus "
    "out-of-sample improvement > max_improvement_gap_pct] + 0.20*[a confidence resting on fewer than "
    "min_bin_trades trades moves by more than tolerance] + 0.15*[one symbol has more than max_symbol_share of "
    "the trades] + 0.10*[some reliability bin is thin]); LOW < 0.25 <= MEDIUM < 0.5 <= HIGH";

// Decides whether the global map may be deployed at the CALIBRATION level, from a result whose other parts
// are filled (trades_used, global_map, evaluation, reliability_before, symbol_slices).
//
// Errors (deployment_ready = false):
//   * fewer labelled trades than options.min_labelled_trades;
//   * no map, or a map that fails ValidateMap, gives a non-finite value, decreases, or gives a probability of
//     exactly 0 or 1 anywhere on a 101-point grid over [min_confidence, max_confidence] (plus the map's knots
//     inside it);
//   * no out-of-sample (walk-forward) evaluation, or out-of-sample MSE after >= before;
//   * the improvement is not significant: the lower bound of its interval at ci_level is not above
//     options.min_improvement_pct (worded as "significantly worse" when the whole interval is below 0).
// Warnings:
//   * max |calibrated - raw| over those points above options.max_shift (the grid spans the confidences the
//     engine actually produced: the map's value far outside them is never used and says nothing);
//   * a shift above options.tolerance where the map rests on fewer than min_bin_trades trades;
//   * thin reliability bins (0 < count < min_bin_trades);
//   * in-sample improvement exceeding the out-of-sample one by more than max_improvement_gap_pct points;
//   * one symbol holding more than max_symbol_share of the labelled trades.
// Also reported: max_shift, the widest interval (upper - lower) over the range, and the largest shift on thin
// evidence. risk_score follows kRiskFormula.
clm::v1::SafetyValidation ValidateSafety(const clm::v1::CalibrationResult& result, const ResolvedOptions& options,
                                         double min_confidence, double max_confidence);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_SAFETY_H_
