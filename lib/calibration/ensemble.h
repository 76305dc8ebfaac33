#ifndef CLM_LIB_CALIBRATION_ENSEMBLE_H_
#define CLM_LIB_CALIBRATION_ENSEMBLE_H_

#include <map>
#include <string>

#include "absl/types/span.h"
#include "clm/v1/calibration.pb.h"
#include "lib/calibration/labels.h"

namespace clm::calibration {

// The ensemble's current member weights, by model name. Empty means "unknown": treated as equal weights.
using EnsembleWeights = std::map<std::string, double>;

// The rule for proposed weights, stated in every result.
inline constexpr char kWeightRule[] =
    "proposed weight = max(skill, 0) / sum over models of max(skill, 0); equal weights when no model has "
    "positive skill. skill = 1 - Brier(model) / Brier(base rate) on the labelled trades carrying that "
    "model's confidence.";

// Scores each ensemble member from the trades' per-model confidences and proposes weights (kWeightRule).
// The models are those that appear in some labelled trade's model_confidences, in name order; nothing is
// scored for a model without data. Current weights: `current` restricted to those models and normalised to
// sum 1 (equal when `current` is empty or gives them no positive weight). total_weight_change is
// sum |proposed - current|; rebalance_recommended is total_weight_change > threshold. Without any per-model
// confidences, has_model_data is false, no model is listed and the note says so.
clm::v1::EnsembleCheck CheckEnsemble(absl::Span<const LabelledTrade> trades, const EnsembleWeights& current,
                                     double threshold);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_ENSEMBLE_H_
