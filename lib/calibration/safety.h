#ifndef CLM_LIB_CALIBRATION_SAFETY_H_
#define CLM_LIB_CALIBRATION_SAFETY_H_

#include "clm/v1/calibration.pb.h"
#include "lib/calibration/options.h"

namespace clm::calibration {

// The risk score formula, stated in every result.
inline constexpr char kRiskFormula[] =
    "risk = 1 if any error; otherwise min(1, 0.30*[max shift > max_shift] + 0.25*[in-sample minus "
    "out-of-sample improvement > max_improvement_gap_pct] + 0.20*[bootstrap interval of the out-of-sample "
    "improvement reaches 0 or below] + 0.15*[one symbol has more than max_symbol_share of the trades] + "
    "0.10*[some reliability bin is thin]); LOW < 0.25 <= MEDIUM < 0.5 <= HIGH";

// Decides whether the global map may be deployed at the CALIBRATION level, from a result whose other parts
// are filled (trades_used, global_map, evaluation, reliability_before, symbol_slices).
//
// Errors (deployment_ready = false):
//   * fewer labelled trades than options.min_labelled_trades;
//   * no map, or a map that fails ValidateMap, gives a non-finite value or decreases anywhere on a 101-point
//     grid over [min_confidence, max_confidence] (plus the map's thresholds inside it);
//   * no out-of-sample evaluation, or out-of-sample MSE after >= before.
// Warnings:
//   * max |calibrated - raw| over those points above options.max_shift (exact for isotonic maps) (the grid spans the confidences the
//     engine actually produced: the map's value far outside them is never used and says nothing);
//   * thin reliability bins (0 < count < min_bin_trades);
//   * in-sample improvement exceeding the out-of-sample one by more than max_improvement_gap_pct points;
//   * the bootstrap interval of the out-of-sample improvement not above 0;
//   * one symbol holding more than max_symbol_share of the labelled trades.
// risk_score follows kRiskFormula.
clm::v1::SafetyValidation ValidateSafety(const clm::v1::CalibrationResult& result, const ResolvedOptions& options,
                                         double min_confidence, double max_confidence);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_SAFETY_H_
