#include "lib/deployment/rules.h"

#include "absl/strings/str_format.h"

namespace clm::deployment {

std::optional<std::string> ShadowEvidenceRefusal(uint64_t version, const clm::v1::LiveKpis& live, uint64_t min_trades,
                                                 double margin) {
  if (live.shadow_trades() < min_trades) {
    return absl::StrFormat("v%d has %d labelled live trades scored in shadow, %d needed", version,
                           live.shadow_trades(), min_trades);
  }
  if (live.mse_shadow() - live.mse_production() > margin) {
    return absl::StrFormat(
        "v%d did worse in shadow: live MSE %.4f against %.4f for what the engine used, over %d trades (margin %g)",
        version, live.mse_shadow(), live.mse_production(), live.shadow_trades(), margin);
  }
  return std::nullopt;
}

}  // namespace clm::deployment
