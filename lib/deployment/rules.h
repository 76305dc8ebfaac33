#ifndef CLM_LIB_DEPLOYMENT_RULES_H_
#define CLM_LIB_DEPLOYMENT_RULES_H_

#include <cstdint>
#include <optional>
#include <string>

#include "clm/v1/deployment.pb.h"

namespace clm::deployment {

// Shadow evidence, the rule that keeps production from being easier to reach than shadow: a version may go
// into production only after at least `min_trades` labelled live trades were scored by it while in shadow,
// with a live MSE not worse than what the engine got meanwhile (production's calibration, or the raw
// confidence when there was none) by more than `margin` (the automatic rollback's margin).
//
// `live` is the version's KPIs since it entered shadow. Returns why it is refused, or nothing when the
// evidence suffices. Pure: no store, no clock.
std::optional<std::string> ShadowEvidenceRefusal(uint64_t version, const clm::v1::LiveKpis& live, uint64_t min_trades,
                                                 double margin);

}  // namespace clm::deployment

#endif  // CLM_LIB_DEPLOYMENT_RULES_H_
