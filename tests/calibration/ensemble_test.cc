#include "lib/calibration/ensemble.h"

#include <vector>

#include "gtest/gtest.h"

namespace clm::calibration {
namespace {

class EnsembleTest : public ::testing::Test {
 protected:
  void AddTrade(double label, std::vector<std::pair<std::string, double>> models) {
    clm::Trade t;
    t.confidence = 0.6;
    t.model_confidences = std::move(models);
    trades_.push_back(std::move(t));
    labels_.push_back(label);
  }
  std::vector<LabelledTrade> Labelled() const {
    std::vector<LabelledTrade> out;
    for (size_t i = 0; i < trades_.size(); ++i) out.push_back({&trades_[i], labels_[i]});
    return out;
  }
  std::vector<clm::Trade> trades_;
  std::vector<double> labels_;
};

TEST_F(EnsembleTest, ScoresSkillAndProposesWeights) {
  // Labels 1, 0, 1, 0: base rate 0.5, base-rate Brier 0.25.
  AddTrade(1, {{"informed", 0.9}, {"flat", 0.5}, {"inverted", 0.2}});
  AddTrade(0, {{"informed", 0.1}, {"flat", 0.5}, {"inverted", 0.8}});
  AddTrade(1, {{"informed", 0.8}, {"flat", 0.5}, {"inverted", 0.3}});
  AddTrade(0, {{"informed", 0.2}, {"flat", 0.5}, {"inverted", 0.7}});
  const auto check = CheckEnsemble(Labelled(), {}, 0.02);
  ASSERT_TRUE(check.has_model_data());
  ASSERT_EQ(check.models_size(), 3);
  // Name order: flat, informed, inverted.
  EXPECT_EQ(check.models(0).model(), "flat");
  EXPECT_NEAR(check.models(0).skill(), 0.0, 1e-12);
  EXPECT_EQ(check.models(1).model(), "informed");
  EXPECT_NEAR(check.models(1).brier(), 0.025, 1e-12);
  EXPECT_NEAR(check.models(1).base_rate_brier(), 0.25, 1e-12);
  EXPECT_NEAR(check.models(1).skill(), 0.9, 1e-12);
  EXPECT_LT(check.models(2).skill(), 0.0);
  // Only "informed" has positive skill: it gets all the weight. Current weights unknown: equal thirds.
  EXPECT_NEAR(check.models(1).proposed_weight(), 1.0, 1e-12);
  EXPECT_NEAR(check.models(0).proposed_weight(), 0.0, 1e-12);
  EXPECT_NEAR(check.models(0).current_weight(), 1.0 / 3, 1e-12);
  EXPECT_NEAR(check.total_weight_change(), 1.0 / 3 + 2.0 / 3 + 1.0 / 3, 1e-12);
  EXPECT_TRUE(check.rebalance_recommended());
  EXPECT_NE(check.note().find("current weights unknown"), std::string::npos);
}

TEST_F(EnsembleTest, NoRebalanceWhenWeightsAlreadyMatch) {
  AddTrade(1, {{"a", 0.9}, {"b", 0.7}});
  AddTrade(0, {{"a", 0.1}, {"b", 0.3}});
  // skill a = 1 - 0.01 / 0.25 = 0.96, b = 1 - 0.09 / 0.25 = 0.64: proposed 0.6 / 0.4.
  const auto check = CheckEnsemble(Labelled(), {{"a", 0.6}, {"b", 0.4}}, 0.02);
  EXPECT_NEAR(check.models(0).proposed_weight(), 0.6, 1e-12);
  EXPECT_NEAR(check.total_weight_change(), 0.0, 1e-12);
  EXPECT_FALSE(check.rebalance_recommended());
  EXPECT_NE(check.note().find("below 0.02 threshold"), std::string::npos) << check.note();
  // 0.605 / 0.395 is a change of 0.01, below the threshold; 0.62 / 0.38 (0.04) is above it.
  EXPECT_FALSE(CheckEnsemble(Labelled(), {{"a", 0.605}, {"b", 0.395}}, 0.02).rebalance_recommended());
  EXPECT_TRUE(CheckEnsemble(Labelled(), {{"a", 0.62}, {"b", 0.38}}, 0.02).rebalance_recommended());
}

TEST_F(EnsembleTest, EqualWeightsWhenNoModelHasSkill) {
  AddTrade(1, {{"a", 0.5}, {"b", 0.2}});
  AddTrade(0, {{"a", 0.5}, {"b", 0.8}});
  const auto check = CheckEnsemble(Labelled(), {{"a", 0.9}, {"b", 0.1}, {"retired", 1.0}}, 0.02);
  EXPECT_NEAR(check.models(0).proposed_weight(), 0.5, 1e-12);
  EXPECT_NEAR(check.models(1).proposed_weight(), 0.5, 1e-12);
  EXPECT_NEAR(check.models(0).current_weight(), 0.9, 1e-12);  // "retired" has no data and is not used
  EXPECT_NEAR(check.total_weight_change(), 0.8, 1e-12);
  EXPECT_NE(check.note().find("no model beats the base rate"), std::string::npos);
  EXPECT_NE(check.note().find("retired"), std::string::npos);
}

TEST_F(EnsembleTest, WithoutPerModelDataNothingIsInvented) {
  AddTrade(1, {});
  AddTrade(0, {});
  const auto check = CheckEnsemble(Labelled(), {{"xgboost", 0.5}, {"lightgbm", 0.5}}, 0.02);
  EXPECT_FALSE(check.has_model_data());
  EXPECT_EQ(check.models_size(), 0);
  EXPECT_EQ(check.total_weight_change(), 0.0);
  EXPECT_FALSE(check.rebalance_recommended());
  EXPECT_NE(check.note().find("no labelled trade carries per-model confidences"), std::string::npos);
}

}  // namespace
}  // namespace clm::calibration
