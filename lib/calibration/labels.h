#ifndef CLM_LIB_CALIBRATION_LABELS_H_
#define CLM_LIB_CALIBRATION_LABELS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "clm/v1/calibration.pb.h"
#include "lib/trade/trade.h"

namespace clm::calibration {

// A trade that takes part in calibration, with its label: WIN = 1, LOSS = 0, NEUTRAL = 0.5 or 0 when the
// options say so. Points into the caller's trade vector, which must outlive it.
struct LabelledTrade {
  const clm::Trade* trade;
  double label;
};

struct LabelledSet {
  std::vector<LabelledTrade> trades;  // ordered by close time (then store sequence, then input position)
  uint64_t wins = 0;
  uint64_t losses = 0;
  uint64_t neutrals = 0;
  uint64_t excluded = 0;  // neutral trades left out under NEUTRAL_EXCLUDE
};

// Labels the trades and orders them by close time, so that cross-validation folds are contiguous in time.
// InvalidArgument, naming the trade, when a confidence is not finite within [0, 1] or an outcome is unknown.
absl::StatusOr<LabelledSet> SelectLabelled(const std::vector<clm::Trade>& trades,
                                           clm::v1::NeutralHandling neutral_handling);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_LABELS_H_
