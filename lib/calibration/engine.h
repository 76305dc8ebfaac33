#ifndef CLM_LIB_CALIBRATION_ENGINE_H_
#define CLM_LIB_CALIBRATION_ENGINE_H_

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "clm/v1/calibration.pb.h"
#include "lib/calibration/calibrator.h"
#include "lib/calibration/ensemble.h"
#include "lib/trade/trade.h"

namespace clm::calibration {

// Progress in [0, 1], reported a few dozen times per run from the calling thread; return false to cancel.
using ProgressOrCancel = std::function<bool(double progress)>;

// Runs a full calibration over `trades` (any order; they are ordered by close time here):
//   1. labels them (WIN 1, LOSS 0, NEUTRAL per options.neutral_handling);
//   2. fits the global map (isotonic or Platt) on every labelled trade;
//   3. evaluates it in sample and by time-ordered k-fold cross-validation with a bootstrap interval;
//   4. builds the reliability diagram and the over/under-confidence findings of the raw confidences;
//   5. repeats the figures per symbol and per model id, fitting a slice's own map only when it has at least
//      options.min_slice_trades labelled trades (otherwise the slice map is the global one and says so);
//   6. scores the ensemble members from the per-model confidences against `current_weights`;
//   7. runs the safety validation, which decides deployment_ready.
//
// Errors: InvalidArgument for invalid options (naming the option) or an invalid trade (naming its index);
// Cancelled when progress_or_cancel returns false. Too little data is not an error: the result says so in
// evaluation.note and safety.errors. With no labelled trade at all, global_map is unset.
// The result is deterministic for the same trades, options (including seed) and weights.
absl::StatusOr<clm::v1::CalibrationResult> RunCalibration(const std::vector<clm::Trade>& trades,
                                                          const clm::v1::CalibrationOptions& options,
                                                          const EnsembleWeights& current_weights,
                                                          const ProgressOrCancel& progress_or_cancel);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_ENGINE_H_
