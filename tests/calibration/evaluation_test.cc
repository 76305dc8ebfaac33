#include "lib/calibration/evaluation.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "lib/calibration/calibrator.h"
#include "lib/calibration/metrics.h"
#include "tests/calibration/fixtures.h"

namespace clm::calibration {
namespace {

struct Data {
  std::vector<double> confidence, label;
  std::vector<int64_t> closed_at_us;
};

Data MakeData(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Data d;
  for (size_t i = 0; i < n; ++i) {
    const double c = std::round(testing::Uniform(rng) * 100) / 100;
    d.confidence.push_back(c);
    d.label.push_back(testing::Uniform(rng) < 0.2 + 0.5 * c ? 1.0 : 0.0);  // flatter than the confidence
    d.closed_at_us.push_back(1000 + static_cast<int64_t>(i) * 10);
  }
  return d;
}

TEST(Folds, ContiguousDisjointAndCovering) {
  const auto folds = TimeOrderedFolds(10, 3);
  ASSERT_EQ(folds.size(), 3u);
  EXPECT_EQ(folds[0].begin, 0u);
  EXPECT_EQ(folds[0].end, 3u);
  EXPECT_EQ(folds[1].begin, 3u);
  EXPECT_EQ(folds[1].end, 6u);
  EXPECT_EQ(folds[2].begin, 6u);
  EXPECT_EQ(folds[2].end, 10u);
  for (size_t n : {5u, 11u, 999u}) {
    for (int k : {2, 5, 7}) {
      if (static_cast<size_t>(k) > n) continue;
      const auto f = TimeOrderedFolds(n, k);
      ASSERT_EQ(f.size(), static_cast<size_t>(k));
      EXPECT_EQ(f.front().begin, 0u);
      EXPECT_EQ(f.back().end, n);
      for (size_t i = 1; i < f.size(); ++i) EXPECT_EQ(f[i].begin, f[i - 1].end);
      for (const auto& r : f) {
        EXPECT_LE(r.end - r.begin, n / k + 1);
        EXPECT_GE(r.end - r.begin, n / k);
      }
    }
  }
}

TEST(Evaluate, FoldsAreTimeOrderedAndHeldOut) {
  const Data d = MakeData(1000, 3);
  ResolvedOptions o;
  auto full = FitMap(clm::v1::ISOTONIC, d.confidence, d.label);
  ASSERT_TRUE(full.ok());
  std::vector<double> oos;
  auto ev = Evaluate(clm::v1::ISOTONIC, d.confidence, d.label, d.closed_at_us, *full, o, nullptr, &oos);
  ASSERT_TRUE(ev.ok()) << ev.status();
  ASSERT_TRUE(ev->cross_validated());
  ASSERT_EQ(ev->fold_results_size(), 5);
  uint64_t tested = 0;
  for (int f = 0; f < 5; ++f) {
    const auto& fr = ev->fold_results(f);
    EXPECT_EQ(fr.train_count() + fr.test_count(), 1000u);
    tested += fr.test_count();
    EXPECT_LE(fr.test_from_us(), fr.test_to_us());
    if (f > 0) {
      EXPECT_GT(fr.test_from_us(), ev->fold_results(f - 1).test_to_us());  // disjoint, in time order
    }
  }
  EXPECT_EQ(tested, 1000u);

  // Fold 2's predictions come from a map fitted on folds 0, 1, 3, 4 only.
  std::vector<double> tx, ty;
  for (size_t i = 0; i < 1000; ++i) {
    if (i >= 400 && i < 600) continue;
    tx.push_back(d.confidence[i]);
    ty.push_back(d.label[i]);
  }
  auto held_out = FitMap(clm::v1::ISOTONIC, tx, ty);
  ASSERT_TRUE(held_out.ok());
  ASSERT_EQ(oos.size(), 1000u);
  for (size_t i = 400; i < 600; ++i) EXPECT_EQ(oos[i], Apply(*held_out, d.confidence[i]));

  // The engine's confidences are too steep: calibration helps out of sample, but less than in sample.
  EXPECT_LT(ev->out_of_sample_after().mse(), ev->out_of_sample_before().mse());
  EXPECT_GT(ev->improvement_pct(), 0.0);
  EXPECT_GE(ev->in_sample_improvement_pct(), ev->improvement_pct());
  EXPECT_NEAR(ev->out_of_sample_after().mse(), Mse(oos, d.label), 1e-15);
  EXPECT_LT(ev->improvement_ci_low(), ev->improvement_pct());
  EXPECT_GT(ev->improvement_ci_high(), ev->improvement_pct());
}

TEST(Evaluate, RejectsUnorderedTimes) {
  Data d = MakeData(50, 1);
  std::swap(d.closed_at_us[10], d.closed_at_us[20]);
  auto full = FitMap(clm::v1::ISOTONIC, d.confidence, d.label);
  auto ev = Evaluate(clm::v1::ISOTONIC, d.confidence, d.label, d.closed_at_us, *full, ResolvedOptions(), nullptr,
                     nullptr);
  EXPECT_EQ(ev.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Evaluate, TooFewTradesIsReportedNotAnError) {
  const Data d = MakeData(9, 1);  // 5 folds need 10
  auto full = FitMap(clm::v1::ISOTONIC, d.confidence, d.label);
  std::vector<double> oos = {1.0};
  auto ev = Evaluate(clm::v1::ISOTONIC, d.confidence, d.label, d.closed_at_us, *full, ResolvedOptions(), nullptr,
                     &oos);
  ASSERT_TRUE(ev.ok());
  EXPECT_FALSE(ev->cross_validated());
  EXPECT_TRUE(oos.empty());
  EXPECT_NE(ev->note().find("needs at least 10"), std::string::npos) << ev->note();
  EXPECT_EQ(ev->in_sample_before().count(), 9u);
}

TEST(Evaluate, CancelStopsCrossValidation) {
  const Data d = MakeData(200, 1);
  auto full = FitMap(clm::v1::ISOTONIC, d.confidence, d.label);
  int calls = 0;
  auto ev = Evaluate(clm::v1::ISOTONIC, d.confidence, d.label, d.closed_at_us, *full, ResolvedOptions(),
                     [&calls](double) { return ++calls < 3; }, nullptr);
  EXPECT_EQ(ev.status().code(), absl::StatusCode::kCancelled);
}

TEST(Bootstrap, DeterministicPerSeed) {
  const Data d = MakeData(500, 5);
  std::vector<double> before(500), after(500);
  for (size_t i = 0; i < 500; ++i) {
    before[i] = std::pow(d.confidence[i] - d.label[i], 2);
    after[i] = std::pow(0.2 + 0.5 * d.confidence[i] - d.label[i], 2);
  }
  auto a = BootstrapImprovement(before, after, 1000, 42, 0.95, nullptr);
  auto b = BootstrapImprovement(before, after, 1000, 42, 0.95, nullptr);
  auto c = BootstrapImprovement(before, after, 1000, 43, 0.95, nullptr);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->low, b->low);
  EXPECT_EQ(a->high, b->high);
  EXPECT_NE(a->low, c->low);
  double sb = 0, sa = 0;
  for (size_t i = 0; i < 500; ++i) {
    sb += before[i];
    sa += after[i];
  }
  const double point = ImprovementPct(sb, sa);
  EXPECT_LT(a->low, point);
  EXPECT_GT(a->high, point);
  EXPECT_GT(a->low, 0.0);  // the true map is clearly better
}

TEST(FitMap, PlattMapRoundTrips) {
  const Data d = MakeData(300, 9);
  auto map = FitMap(clm::v1::PLATT, d.confidence, d.label);
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->method(), clm::v1::PLATT);
  EXPECT_EQ(map->trained_on(), 300u);
  EXPECT_LT(map->platt_a(), 0.0);
  EXPECT_TRUE(ValidateMap(*map).ok());
}

}  // namespace
}  // namespace clm::calibration
