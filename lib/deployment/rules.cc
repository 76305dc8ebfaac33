#include "lib/deployment/rules.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace clm::deployment {
namespace {

Verdict Refuse(std::string rule, std::string why) { return {std::move(rule), std::move(why)}; }

// The level as `report` grants it now.
Verdict Level(clm::v1::AuthorizationLevel needed, const clm::v1::CadenceReport& report) {
  bool authorized = false;
  std::string why = "the level is not in the cadence report";
  for (const clm::v1::LevelStatus& level : report.levels()) {
    if (level.level() != needed) continue;
    authorized = level.authorized();
    why = level.reason();
  }
  if (authorized) return {};
  return Refuse("level_authorized",
                absl::StrCat(clm::v1::AuthorizationLevel_Name(needed), " level is not authorized: ", why));
}

}  // namespace

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

Verdict CheckApproval(const clm::v1::ApproveRequest& request, const clm::v1::Job& job,
                      const clm::v1::CadenceReport& report, const ShadowState& shadow, const RuleSettings& settings) {
  if (job.state() != clm::v1::SUCCEEDED) {
    return Refuse("job_succeeded",
                  absl::StrCat("job ", job.id(), " is ", clm::v1::JobState_Name(job.state()), ", not SUCCEEDED"));
  }
  const clm::v1::SafetyValidation& safety = job.result().safety();
  if (!safety.deployment_ready() || !job.result().has_global_map()) {
    return Refuse("deployment_ready",
                  absl::StrCat("job ", job.id(), " failed safety validation: ",
                               safety.errors().empty() ? "no calibration map" : absl::StrJoin(safety.errors(), "; ")));
  }
  if (request.skip_shadow() && settings.approver_is_automatic) {
    return Refuse("manual_approval",
                  absl::StrCat("skipping shadow is an override only a person may make, not ", request.approver()));
  }
  if (request.include_ensemble_weights()) {
    if (settings.approver_is_automatic) {
      return Refuse("manual_approval", absl::StrCat("ensemble weights go into production only with a person's "
                                                    "approval, not ",
                                                    request.approver(), "'s"));
    }
    const clm::v1::EnsembleCheck& ensemble = job.result().ensemble();
    if (!ensemble.has_model_data() || ensemble.models().empty()) {
      return Refuse("ensemble_available",
                    absl::StrCat("job ", job.id(), " has no ensemble weights: no trade carried model confidences"));
    }
  }
  // Shadow and production both need the SHADOW level: production is never easier to reach than shadow.
  if (Verdict level = Level(clm::v1::SHADOW, report); !level.allowed()) return level;
  if (request.include_ensemble_weights()) {
    if (Verdict level = Level(clm::v1::PRODUCTION, report); !level.allowed()) return level;
  }
  if (request.stage() == clm::v1::STAGE_PRODUCTION && !request.skip_shadow()) {
    if (shadow.version == 0 || shadow.job_id != job.id()) {
      return Refuse("shadow_evidence",
                    absl::StrCat("job ", job.id(), " has not been in shadow: approve it into shadow and promote it "
                                 "after ", settings.min_shadow_trades,
                                 " live trades, or pass skip_shadow with a reason"));
    }
    if (auto why = ShadowEvidenceRefusal(shadow.version, shadow.live, settings.min_shadow_trades, settings.margin)) {
      return Refuse("shadow_evidence", *why);
    }
  }
  return {};
}

Verdict CheckPromotion(const clm::v1::PromoteRequest& request, const clm::v1::CadenceReport& report,
                       const ShadowState& shadow, const RuleSettings& settings) {
  if (request.version() == 0 || request.version() != shadow.version) {
    return Refuse("is_shadow", absl::StrCat("v", request.version(), " is not in shadow: ",
                                            shadow.version == 0 ? "there is no shadow version"
                                                                : absl::StrCat("the shadow version is v", shadow.version)));
  }
  if (Verdict level = Level(clm::v1::SHADOW, report); !level.allowed()) return level;
  if (auto why = ShadowEvidenceRefusal(shadow.version, shadow.live, settings.min_shadow_trades, settings.margin)) {
    return Refuse("shadow_evidence", *why);
  }
  return {};
}

}  // namespace clm::deployment
