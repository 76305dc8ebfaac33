#include "lib/calibration/evaluation.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "lib/calibration/calibrator.h"
#include "lib/calibration/metrics.h"
#include "lib/calibration/venn_abers.h"
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

ResolvedOptions WithMethod(clm::v1::CalibrationMethod method) {
  ResolvedOptions o;
  o.method = method;
  return o;
}

TEST(Evaluate, WalkForwardScoresEachBlockWithEarlierTradesOnly) {
  const Data d = MakeData(1200, 3);
  const ResolvedOptions o;  // 5 folds: 6 blocks of 200
  auto full = FitMap(o, d.confidence, d.label);
  ASSERT_TRUE(full.ok());
  std::vector<double> oos;
  size_t first_scored = 0;
  auto ev = Evaluate(d.confidence, d.label, d.closed_at_us, *full, o, nullptr, &oos, &first_scored);
  ASSERT_TRUE(ev.ok()) << ev.status();
  ASSERT_TRUE(ev->cross_validated());
  EXPECT_NE(ev->scheme().find("walk-forward"), std::string::npos) << ev->scheme();
  EXPECT_NE(ev->interval_method().find("moving-block bootstrap"), std::string::npos) << ev->interval_method();
  EXPECT_EQ(first_scored, 200u);
  EXPECT_EQ(ev->scored(), 1000u);
  ASSERT_EQ(ev->fold_results_size(), 5);
  for (int f = 0; f < 5; ++f) {
    const auto& fr = ev->fold_results(f);
    EXPECT_EQ(fr.index(), f + 1);
    EXPECT_EQ(fr.train_count(), 200u * (f + 1)) << "an expanding window: every block before this one";
    EXPECT_EQ(fr.test_count(), 200u);
    EXPECT_EQ(fr.test_from_us(), d.closed_at_us[200 * (f + 1)]);
    if (f > 0) {
      EXPECT_GT(fr.test_from_us(), ev->fold_results(f - 1).test_to_us());
    }
  }
  ASSERT_EQ(oos.size(), 1200u);
  for (size_t i = 0; i < 200; ++i) EXPECT_TRUE(std::isnan(oos[i])) << "block 0 only trains";

  // Each scored trade's prediction comes from a map fitted only on the trades closed before its block:
  // refitting on that prefix gives the same value, and no later trade could have been seen.
  for (size_t block = 1; block <= 5; ++block) {
    const size_t begin = 200 * block;
    auto prefix = FitMap(o, absl::MakeConstSpan(d.confidence).subspan(0, begin),
                         absl::MakeConstSpan(d.label).subspan(0, begin));
    ASSERT_TRUE(prefix.ok());
    for (size_t i = begin; i < begin + 200; ++i) {
      EXPECT_EQ(oos[i], Apply(*prefix, d.confidence[i])) << i;
      EXPECT_LT(d.closed_at_us[begin - 1], d.closed_at_us[i]);
    }
  }

  // The engine's confidences are too steep: calibration helps out of sample, but less than in sample.
  std::vector<double> scored_conf(d.confidence.begin() + 200, d.confidence.end());
  std::vector<double> scored_label(d.label.begin() + 200, d.label.end());
  std::vector<double> scored_oos(oos.begin() + 200, oos.end());
  EXPECT_EQ(ev->out_of_sample_before().count(), 1000u);
  EXPECT_NEAR(ev->out_of_sample_before().mse(), Mse(scored_conf, scored_label), 1e-15);
  EXPECT_NEAR(ev->out_of_sample_after().mse(), Mse(scored_oos, scored_label), 1e-15);
  EXPECT_LT(ev->out_of_sample_after().mse(), ev->out_of_sample_before().mse());
  EXPECT_GT(ev->improvement_pct(), 0.0);
  EXPECT_GE(ev->in_sample_improvement_pct(), ev->improvement_pct());
  EXPECT_LT(ev->improvement_ci_low(), ev->improvement_pct());
  EXPECT_GT(ev->improvement_ci_high(), ev->improvement_pct());
}

// A map fitted on the past does not fit a market that changed: walk-forward says so, where k-fold
// cross-validation (training on later trades too) would borrow the future and look better.
TEST(Evaluate, DriftIsSeenAsWorseOutOfSample) {
  std::mt19937_64 rng(11);
  Data d;
  const size_t n = 3000;
  for (size_t i = 0; i < n; ++i) {
    const double c = 0.3 + 0.5 * testing::Uniform(rng);
    // Early trades win far less often than claimed, late ones far more: the relation flips over time.
    const double t = static_cast<double>(i) / n;
    const double p = std::clamp(c + (t < 0.5 ? -0.25 : 0.2), 0.02, 0.98);
    d.confidence.push_back(c);
    d.label.push_back(testing::Uniform(rng) < p ? 1.0 : 0.0);
    d.closed_at_us.push_back(static_cast<int64_t>(i) * 1000);
  }
  const ResolvedOptions o;
  auto full = FitMap(o, d.confidence, d.label);
  ASSERT_TRUE(full.ok());
  auto ev = Evaluate(d.confidence, d.label, d.closed_at_us, *full, o, nullptr, nullptr);
  ASSERT_TRUE(ev.ok());
  // A last-20% holdout: fit on the first 80%, score the rest.
  const size_t cut = n * 4 / 5;
  auto early = FitMap(o, absl::MakeConstSpan(d.confidence).subspan(0, cut), absl::MakeConstSpan(d.label).subspan(0, cut));
  ASSERT_TRUE(early.ok());
  std::vector<double> raw, calibrated, labels;
  for (size_t i = cut; i < n; ++i) {
    raw.push_back(d.confidence[i]);
    calibrated.push_back(Apply(*early, d.confidence[i]));
    labels.push_back(d.label[i]);
  }
  const double holdout = ImprovementPct(Mse(raw, labels), Mse(calibrated, labels));
  EXPECT_LT(holdout, 0.0);
  EXPECT_LT(ev->improvement_pct(), 0.0) << "walk-forward must not hide the drift";
  EXPECT_LT(ev->improvement_ci_low(), 0.0);
}

TEST(Evaluate, RejectsUnorderedTimes) {
  Data d = MakeData(50, 1);
  std::swap(d.closed_at_us[10], d.closed_at_us[20]);
  auto full = FitMap(ResolvedOptions(), d.confidence, d.label);
  auto ev = Evaluate(d.confidence, d.label, d.closed_at_us, *full, ResolvedOptions(), nullptr, nullptr);
  EXPECT_EQ(ev.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Evaluate, TooFewTradesIsReportedNotAnError) {
  const Data d = MakeData(11, 1);  // 5 folds walk forward over 6 blocks, which need 12
  auto full = FitMap(ResolvedOptions(), d.confidence, d.label);
  std::vector<double> oos = {1.0};
  auto ev = Evaluate(d.confidence, d.label, d.closed_at_us, *full, ResolvedOptions(), nullptr, &oos);
  ASSERT_TRUE(ev.ok());
  EXPECT_FALSE(ev->cross_validated());
  EXPECT_TRUE(oos.empty());
  EXPECT_NE(ev->note().find("needs at least 12"), std::string::npos) << ev->note();
  EXPECT_EQ(ev->in_sample_before().count(), 11u);
}

TEST(Evaluate, CancelStopsCrossValidation) {
  const Data d = MakeData(200, 1);
  auto full = FitMap(ResolvedOptions(), d.confidence, d.label);
  int calls = 0;
  auto ev = Evaluate(d.confidence, d.label, d.closed_at_us, *full, ResolvedOptions(),
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
  auto a = BootstrapImprovement(before, after, 1000, 42, 0.95, 8, nullptr);
  auto b = BootstrapImprovement(before, after, 1000, 42, 0.95, 8, nullptr);
  auto c = BootstrapImprovement(before, after, 1000, 43, 0.95, 8, nullptr);
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

// Serial dependence widens the interval: with runs of identical errors (as when a whole block is scored by
// one poor map), blocks keep the runs together and the interval is wider than the i.i.d. bootstrap's.
TEST(Bootstrap, BlocksWidenTheIntervalUnderSerialDependence) {
  std::mt19937_64 rng(3);
  std::vector<double> before, after;
  for (int run = 0; run < 60; ++run) {
    const double gain = testing::Uniform(rng) - 0.4;  // each run helps or hurts as a whole
    for (int i = 0; i < 20; ++i) {
      before.push_back(0.25);
      after.push_back(0.25 - 0.05 * gain);
    }
  }
  auto iid = BootstrapImprovement(before, after, 2000, 7, 0.95, 1, nullptr);
  auto blocks = BootstrapImprovement(before, after, 2000, 7, 0.95, 20, nullptr);
  ASSERT_TRUE(iid.ok() && blocks.ok());
  EXPECT_GT(blocks->high - blocks->low, 2.0 * (iid->high - iid->low));
  EXPECT_EQ(BootstrapBlockLength(1), 1u);
  EXPECT_EQ(BootstrapBlockLength(1000), 10u);
  EXPECT_EQ(BootstrapBlockLength(598), 8u);
}

TEST(FitMap, PlattMapRoundTrips) {
  const Data d = MakeData(300, 9);
  auto map = FitMap(WithMethod(clm::v1::PLATT), d.confidence, d.label);
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->method(), clm::v1::PLATT);
  EXPECT_EQ(map->trained_on(), 300u);
  EXPECT_LT(map->platt_a(), 0.0);
  EXPECT_TRUE(ValidateMap(*map).ok());
  EXPECT_GT(map->guard_x_size(), 0) << "a deployed Platt map carries its bounds";
}

// The deployed Venn-Abers map leaves out the confidences where the predictor does not change: on
// continuous confidences it shrinks to about the isotonic block count, and gives exactly the full table's
// values everywhere.
TEST(FitMap, VennAbersCompactionIsLossless) {
  std::mt19937_64 rng(4);
  std::vector<double> x, y;
  for (int i = 0; i < 20000; ++i) {
    const double c = testing::Uniform(rng);
    x.push_back(c);
    y.push_back(testing::Uniform(rng) < 0.2 + 0.5 * c ? 1.0 : 0.0);
  }
  auto map = FitMap(WithMethod(clm::v1::VENN_ABERS), x, y);
  ASSERT_TRUE(map.ok());
  ASSERT_TRUE(ValidateMap(*map).ok());
  auto full = FitVennAbers(x, y);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->x.size(), 20000u);
  EXPECT_LT(map->x_thresholds_size(), 4000) << "compacted";
  std::vector<double> queries = full->x;
  for (size_t i = 0; i + 1 < full->x.size(); i += 7) queries.push_back((full->x[i] + full->x[i + 1]) / 2);
  queries.push_back(-1.0);
  queries.push_back(2.0);
  for (double c : queries) {
    const VennAbersValue want = ApplyVennAbers(full->x.data(), full->x.size(), full->p0.data(), full->p1.data(), c);
    const Calibrated got = ApplyWithBounds(*map, c);
    ASSERT_EQ(got.lower, want.p0) << c;
    ASSERT_EQ(got.upper, want.p1) << c;
    ASSERT_EQ(got.probability, want.probability) << c;
  }
}

TEST(FitMap, VennAbersMapCarriesItsTable) {
  const Data d = MakeData(300, 9);
  auto map = FitMap(WithMethod(clm::v1::VENN_ABERS), d.confidence, d.label);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->method(), clm::v1::VENN_ABERS);
  EXPECT_EQ(map->va_p0_size(), 2 * map->x_thresholds_size() + 1);
  EXPECT_TRUE(ValidateMap(*map).ok()) << ValidateMap(*map);
  for (double c = 0.0; c <= 1.0; c += 0.01) {
    const Calibrated v = ApplyWithBounds(*map, c);
    EXPECT_LE(v.lower, v.probability);
    EXPECT_LE(v.probability, v.upper);
    EXPECT_GT(v.probability, 0.0);
    EXPECT_LT(v.probability, 1.0);
  }
}

}  // namespace
}  // namespace clm::calibration
