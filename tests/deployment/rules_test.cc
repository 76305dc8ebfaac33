// The deployment rules as pure functions: every rule refuses with its name and words, in order, and the
// change is allowed once each is satisfied. No store, no clock.
#include "lib/deployment/rules.h"

#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace clm::deployment {
namespace {

clm::v1::Job ReadyJob(const std::string& id) {
  clm::v1::Job job;
  job.set_id(id);
  job.set_state(clm::v1::SUCCEEDED);
  job.mutable_result()->mutable_global_map()->set_method(clm::v1::ISOTONIC);
  job.mutable_result()->mutable_safety()->set_deployment_ready(true);
  auto* ensemble = job.mutable_result()->mutable_ensemble();
  ensemble->set_has_model_data(true);
  ensemble->add_models()->set_model("xgboost");
  return job;
}

clm::v1::CadenceReport Levels(bool shadow, bool production) {
  clm::v1::CadenceReport report;
  for (auto [level, authorized] : {std::pair{clm::v1::CALIBRATION, true}, std::pair{clm::v1::SHADOW, shadow},
                                   std::pair{clm::v1::PRODUCTION, production}}) {
    auto* l = report.add_levels();
    l->set_level(level);
    l->set_authorized(authorized);
    l->set_reason(authorized ? "ok" : "too few trades");
  }
  return report;
}

ShadowState ShadowOf(const std::string& job, uint64_t trades, double mse_shadow, double mse_production) {
  ShadowState s;
  s.version = 4;
  s.job_id = job;
  s.live.set_shadow_trades(trades);
  s.live.set_mse_shadow(mse_shadow);
  s.live.set_mse_production(mse_production);
  return s;
}

struct Inputs {
  clm::v1::ApproveRequest request;
  clm::v1::Job job = ReadyJob("cal_a");
  clm::v1::CadenceReport report = Levels(true, true);
  ShadowState shadow = ShadowOf("cal_a", 150, 0.20, 0.25);
  RuleSettings settings;
  Inputs() {
    request.set_job_id("cal_a");
    request.set_stage(clm::v1::STAGE_PRODUCTION);
    request.set_approver("alice");
    request.set_reason("reviewed");
    request.set_include_ensemble_weights(true);
  }
};

TEST(CheckApproval, EachRuleRefusesInOrder) {
  struct Case {
    std::string name;
    std::function<void(Inputs&)> spoil;
    std::string rule;
    std::string why;
  };
  const std::vector<Case> cases = {
      {"not succeeded", [](Inputs& in) { in.job.set_state(clm::v1::RUNNING); }, "job_succeeded",
       "job cal_a is RUNNING, not SUCCEEDED"},
      {"not ready", [](Inputs& in) {
         in.job.mutable_result()->mutable_safety()->set_deployment_ready(false);
         in.job.mutable_result()->mutable_safety()->add_errors("improvement not significant");
       },
       "deployment_ready", "job cal_a failed safety validation: improvement not significant"},
      {"no map", [](Inputs& in) { in.job.mutable_result()->clear_global_map(); }, "deployment_ready",
       "job cal_a failed safety validation: no calibration map"},
      {"automatic skip", [](Inputs& in) {
         in.request.set_skip_shadow(true);
         in.request.set_approver("cadence-monitor");
         in.settings.approver_is_automatic = true;
       },
       "manual_approval", "skipping shadow is an override only a person may make, not cadence-monitor"},
      {"automatic weights", [](Inputs& in) { in.settings.approver_is_automatic = true; }, "manual_approval",
       "ensemble weights go into production only with a person's approval, not alice's"},
      {"no models", [](Inputs& in) { in.job.mutable_result()->clear_ensemble(); }, "ensemble_available",
       "job cal_a has no ensemble weights: no trade carried model confidences"},
      {"no shadow level", [](Inputs& in) { in.report = Levels(false, true); }, "level_authorized",
       "SHADOW level is not authorized: too few trades"},
      {"no production level for weights", [](Inputs& in) { in.report = Levels(true, false); }, "level_authorized",
       "PRODUCTION level is not authorized: too few trades"},
      {"never in shadow", [](Inputs& in) { in.shadow = ShadowState(); }, "shadow_evidence",
       "job cal_a has not been in shadow: approve it into shadow and promote it after 100 live trades, or pass "
       "skip_shadow with a reason"},
      {"another job in shadow", [](Inputs& in) { in.shadow.job_id = "cal_b"; }, "shadow_evidence",
       "job cal_a has not been in shadow: approve it into shadow and promote it after 100 live trades, or pass "
       "skip_shadow with a reason"},
      {"too few shadow trades", [](Inputs& in) { in.shadow.live.set_shadow_trades(99); }, "shadow_evidence",
       "v4 has 99 labelled live trades scored in shadow, 100 needed"},
      {"worse in shadow", [](Inputs& in) { in.shadow.live.set_mse_shadow(0.2601); }, "shadow_evidence",
       "v4 did worse in shadow: live MSE 0.2601 against 0.2500 for what the engine used, over 150 trades "
       "(margin 0.01)"},
  };
  {
    Inputs in;
    const Verdict ok = CheckApproval(in.request, in.job, in.report, in.shadow, in.settings);
    EXPECT_TRUE(ok.allowed()) << ok.rule << ": " << ok.why;
  }
  for (const Case& c : cases) {
    Inputs in;
    c.spoil(in);
    const Verdict v = CheckApproval(in.request, in.job, in.report, in.shadow, in.settings);
    EXPECT_EQ(v.rule, c.rule) << c.name;
    EXPECT_EQ(v.why, c.why) << c.name;
  }
}

TEST(CheckApproval, ShadowNeedsOnlyTheShadowLevelAndSkipShadowWaivesTheEvidenceOnly) {
  Inputs in;
  in.request.set_include_ensemble_weights(false);
  in.request.set_stage(clm::v1::STAGE_SHADOW);
  in.shadow = ShadowState();
  in.report = Levels(true, false);
  EXPECT_TRUE(CheckApproval(in.request, in.job, in.report, in.shadow, in.settings).allowed());

  in.request.set_stage(clm::v1::STAGE_PRODUCTION);
  EXPECT_EQ(CheckApproval(in.request, in.job, in.report, in.shadow, in.settings).rule, "shadow_evidence");
  in.request.set_skip_shadow(true);
  EXPECT_TRUE(CheckApproval(in.request, in.job, in.report, in.shadow, in.settings).allowed());
  in.report = Levels(false, false);
  EXPECT_EQ(CheckApproval(in.request, in.job, in.report, in.shadow, in.settings).rule, "level_authorized")
      << "skipping shadow never skips the SHADOW level";
}

TEST(CheckPromotion, IsShadowThenLevelThenEvidence) {
  const ShadowState shadow = ShadowOf("cal_a", 100, 0.25, 0.25);
  const RuleSettings settings;
  clm::v1::PromoteRequest request;
  request.set_version(3);
  EXPECT_EQ(CheckPromotion(request, Levels(true, false), shadow, settings).why,
            "v3 is not in shadow: the shadow version is v4");
  EXPECT_EQ(CheckPromotion(request, Levels(true, false), ShadowState(), settings).why,
            "v3 is not in shadow: there is no shadow version");
  request.set_version(4);
  EXPECT_EQ(CheckPromotion(request, Levels(false, false), shadow, settings).rule, "level_authorized");
  ShadowState thin = shadow;
  thin.live.set_shadow_trades(10);
  EXPECT_EQ(CheckPromotion(request, Levels(true, false), thin, settings).rule, "shadow_evidence");
  EXPECT_TRUE(CheckPromotion(request, Levels(true, false), shadow, settings).allowed())
      << "equal to production is not worse";
  RuleSettings strict;
  strict.min_shadow_trades = 101;
  EXPECT_EQ(CheckPromotion(request, Levels(true, false), shadow, strict).rule, "shadow_evidence");
}

}  // namespace
}  // namespace clm::deployment
