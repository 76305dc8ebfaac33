#ifndef CLM_LIB_DEPLOYMENT_RULES_H_
#define CLM_LIB_DEPLOYMENT_RULES_H_

#include <cstdint>
#include <optional>
#include <string>

#include "clm/v1/cadence.pb.h"
#include "clm/v1/calibration_job.pb.h"
#include "clm/v1/deployment.pb.h"

namespace clm::deployment {

// The rules that decide whether a deployment change may happen, as pure functions of plain inputs: no store,
// no clock, no locks. DeploymentManager gathers the inputs, calls them, audits a refusal and applies an
// allowed change in one transaction.

// A refusal names its rule and says why in words; an empty rule allows the change.
struct Verdict {
  std::string rule;
  std::string why;
  bool allowed() const { return rule.empty(); }
};

// The shadow slot as the rules see it.
struct ShadowState {
  uint64_t version = 0;  // 0: no shadow version
  std::string job_id;
  clm::v1::LiveKpis live;  // since it entered shadow
};

struct RuleSettings {
  uint64_t min_shadow_trades = 100;
  double margin = 0.01;               // the automatic rollback's margin, in Brier points
  bool approver_is_automatic = false;  // the approver is a service (cadence-monitor), not a person
};

// Shadow evidence, the rule that keeps production from being easier to reach than shadow: a version may go
// into production only after at least `min_trades` labelled live trades were scored by it while in shadow,
// with a live MSE not worse than what the engine got meanwhile (production's calibration, or the raw
// confidence when there was none) by more than `margin`. Returns why it is refused, or nothing.
std::optional<std::string> ShadowEvidenceRefusal(uint64_t version, const clm::v1::LiveKpis& live, uint64_t min_trades,
                                                 double margin);

// Approve, rules in this order: job_succeeded; deployment_ready (safety validation and a global map);
// manual_approval (skip_shadow and ensemble weights need a person); ensemble_available (weights need scored
// models); level_authorized (SHADOW for shadow and for production, PRODUCTION too with weights, from `report`);
// shadow_evidence (production without skip_shadow: the shadow version is this job's and has the evidence).
// `request` must already be well-formed (the manager checks fields first).
Verdict CheckApproval(const clm::v1::ApproveRequest& request, const clm::v1::Job& job,
                      const clm::v1::CadenceReport& report, const ShadowState& shadow, const RuleSettings& settings);

// Promote, rules in this order: is_shadow (the version is the shadow one), level_authorized (SHADOW),
// shadow_evidence.
Verdict CheckPromotion(const clm::v1::PromoteRequest& request, const clm::v1::CadenceReport& report,
                       const ShadowState& shadow, const RuleSettings& settings);

}  // namespace clm::deployment

#endif  // CLM_LIB_DEPLOYMENT_RULES_H_
