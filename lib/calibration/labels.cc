#include "lib/calibration/labels.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace clm::calibration {

absl::StatusOr<LabelledSet> SelectLabelled(const std::vector<clm::Trade>& trades,
                                           clm::v1::NeutralHandling neutral_handling) {
  LabelledSet set;
  set.trades.reserve(trades.size());
  for (size_t i = 0; i < trades.size(); ++i) {
    const clm::Trade& t = trades[i];
    if (!(t.confidence >= 0.0 && t.confidence <= 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("trades[", i, "].confidence: must be within [0, 1], got ", t.confidence));
    }
    switch (t.outcome) {
      case clm::Outcome::kWin:
        ++set.wins;
        set.trades.push_back({&t, 1.0});
        break;
      case clm::Outcome::kLoss:
        ++set.losses;
        set.trades.push_back({&t, 0.0});
        break;
      case clm::Outcome::kNeutral:
        ++set.neutrals;
        if (neutral_handling == clm::v1::NEUTRAL_AS_HALF) {
          set.trades.push_back({&t, 0.5});
        } else if (neutral_handling == clm::v1::NEUTRAL_AS_LOSS) {
          set.trades.push_back({&t, 0.0});
        } else {
          ++set.excluded;
        }
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat("trades[", i, "].outcome: must be WIN, LOSS or NEUTRAL, got ",
                                                       static_cast<int>(t.outcome)));
    }
  }
  // Stable: trades closed in the same microsecond with the same sequence keep their input order.
  std::stable_sort(set.trades.begin(), set.trades.end(), [](const LabelledTrade& a, const LabelledTrade& b) {
    if (a.trade->closed_at_us != b.trade->closed_at_us) return a.trade->closed_at_us < b.trade->closed_at_us;
    return a.trade->seq < b.trade->seq;
  });
  return set;
}

}  // namespace clm::calibration
