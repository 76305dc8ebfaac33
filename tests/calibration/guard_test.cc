// The guard: deployed maps never claim certainty, carry their evidence, and are shrunk where it is thin.
#include "lib/calibration/guard.h"

#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "lib/calibration/calibrator.h"
#include "lib/calibration/evaluation.h"
#include "lib/calibration/isotonic.h"
#include "tests/calibration/fixtures.h"

namespace clm::calibration {
namespace {

// Equal-tailed 95% intervals from scipy.stats.beta.ppf (SciPy 1.10.1).
TEST(BetaInterval, MatchesScipy) {
  struct Case {
    double a, b, lo, hi;
  };
  for (const Case& c : {Case{0.5, 0.5, 0.001541333133436012, 0.9984586668665639},
                        Case{3.5, 0.5, 0.46441675695704965, 0.9998493639745635},
                        Case{24, 6, 0.6422524455853559, 0.9200581511239199},
                        Case{4.5, 105.5, 0.012511395467348209, 0.08488095204877223},
                        Case{1000.5, 800.5, 0.5325262559868612, 0.5784063548141526}}) {
    const auto [lo, hi] = BetaInterval(c.a, c.b, 0.95);
    EXPECT_NEAR(lo, c.lo, 1e-12) << c.a << " " << c.b;
    EXPECT_NEAR(hi, c.hi, 1e-12) << c.a << " " << c.b;
  }
}

TEST(PoolAdjacentViolators, PoolsWeightedMeans) {
  std::vector<double> v = {0.1, 0.5, 0.3, 0.6};
  PoolAdjacentViolators(v, {1, 1, 3, 1});
  EXPECT_DOUBLE_EQ(v[0], 0.1);
  EXPECT_DOUBLE_EQ(v[1], 0.35);
  EXPECT_DOUBLE_EQ(v[2], 0.35);
  EXPECT_DOUBLE_EQ(v[3], 0.6);
}

clm::v1::CalibrationMap Guarded(const std::vector<double>& x, const std::vector<double>& y, double prior = 10.0) {
  ResolvedOptions o;
  o.prior_trades = prior;
  absl::StatusOr<clm::v1::CalibrationMap> map = FitMap(o, x, y);
  EXPECT_TRUE(map.ok()) << map.status();
  EXPECT_TRUE(ValidateMap(*map).ok()) << ValidateMap(*map);
  return *map;
}

void ExpectHonest(const clm::v1::CalibrationMap& map) {
  double prev = 0.0;
  for (int i = 0; i <= 1000; ++i) {
    const double c = i / 1000.0;
    const Calibrated v = ApplyWithBounds(map, c);
    EXPECT_GT(v.lower, 0.0) << c;
    EXPECT_LT(v.upper, 1.0) << c;
    EXPECT_LE(v.lower, v.probability) << c;
    EXPECT_LE(v.probability, v.upper) << c;
    EXPECT_GE(v.probability, prev) << "monotone at " << c;
    prev = v.probability;
  }
}

TEST(Guard, NeverCertainEvenOnOneSidedData) {
  const std::vector<double> x = {0.2, 0.4, 0.6, 0.8, 0.95};
  ExpectHonest(Guarded(x, {1, 1, 1, 1, 1}));
  ExpectHonest(Guarded(x, {0, 0, 0, 0, 0}));
  ExpectHonest(Guarded({0.5}, {1}));
  std::vector<double> many(100000, 0.7), losses(100000, 0.0);
  ExpectHonest(Guarded(many, losses));
}

// The seed's finding: 0.90-1.00 is over-confident. A handful of wins at the top must not become 1.0: the
// top block is shrunk towards the base rate and its interval says how little it rests on.
TEST(Guard, ThinTopBlockIsShrunkAndWide) {
  std::mt19937_64 rng(5);
  std::vector<double> x, y;
  for (int i = 0; i < 740; ++i) {
    const double c = 0.5 + 0.3 * testing::Uniform(rng);
    x.push_back(c);
    y.push_back(testing::Uniform(rng) < 0.38 ? 1.0 : 0.0);
  }
  for (double c : {0.95, 0.96, 0.97}) {  // three wins at the top
    x.push_back(c);
    y.push_back(1.0);
  }
  auto raw = FitIsotonic(x, y);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->y.back(), 1.0) << "scikit-learn's fit claims certainty from three trades";
  const clm::v1::CalibrationMap map = Guarded(x, y);
  ExpectHonest(map);
  const Calibrated top = ApplyWithBounds(map, 0.96);
  EXPECT_LT(top.probability, 0.75);
  EXPECT_GT(top.upper - top.lower, 0.3) << "three trades of evidence give a wide interval";
  EXPECT_EQ(map.guard_trades(map.guard_trades_size() - 1), 3.0);
  EXPECT_NEAR(map.prior_mean(), (std::accumulate(y.begin(), y.end(), 0.0) + 0.5) / (y.size() + 1), 1e-15);
  // Where evidence is thick the guard hardly moves the fit.
  const Calibrated mid = ApplyWithBounds(map, 0.65);
  EXPECT_NEAR(mid.probability, InterpolateIsotonic(raw->x.data(), raw->y.data(), raw->x.size(), 0.65), 0.05);
}

// Each pooled group's value is the posterior mean of its trades under its blocks' priors.
TEST(Guard, ValueIsThePosteriorMean) {
  // Two flat blocks: 0.3 (1 win of 4) and 0.7 (3 wins of 4). Base rate (4 + 0.5) / 9 = 0.5.
  const clm::v1::CalibrationMap map =
      Guarded({0.3, 0.3, 0.3, 0.3, 0.7, 0.7, 0.7, 0.7}, {1, 0, 0, 0, 1, 1, 1, 0}, 2.0);
  ASSERT_EQ(map.x_thresholds_size(), 2);
  EXPECT_DOUBLE_EQ(map.prior_mean(), 0.5);
  EXPECT_DOUBLE_EQ(map.y_thresholds(0), (1 + 1.0) / (4 + 2.0));
  EXPECT_DOUBLE_EQ(map.y_thresholds(1), (3 + 1.0) / (4 + 2.0));
  const auto [lo, hi] = BetaInterval(2.0, 4.0, 0.95);
  EXPECT_DOUBLE_EQ(map.guard_lower(0), lo);
  EXPECT_DOUBLE_EQ(map.guard_upper(0), hi);
  EXPECT_EQ(map.guard_trades(0), 4.0);
}

TEST(Guard, PlattIsClampedIntoItsBounds) {
  // Separable: the sigmoid is nearly a step and reaches 1 - 1e-9 and beyond.
  std::vector<double> x, y;
  for (int i = 0; i < 40; ++i) {
    x.push_back(0.2 + 0.005 * i);
    y.push_back(0.0);
    x.push_back(0.8 + 0.005 * i);
    y.push_back(1.0);
  }
  ResolvedOptions o;
  o.method = clm::v1::PLATT;
  auto map = FitMap(o, x, y);
  ASSERT_TRUE(map.ok());
  ASSERT_TRUE(ValidateMap(*map).ok()) << ValidateMap(*map);
  EXPECT_GT(ApplyWithBounds(*map, 0.99).upper, 0.5);
  ExpectHonest(*map);
}

TEST(Guard, CompiledAndFreeApplyAgreeBitForBit) {
  std::mt19937_64 rng(9);
  std::vector<double> x, y;
  for (int i = 0; i < 2000; ++i) {
    const double c = testing::Uniform(rng);
    x.push_back(c);
    y.push_back(testing::Uniform(rng) < c * 0.8 ? 1.0 : 0.0);
  }
  for (auto method : {clm::v1::ISOTONIC, clm::v1::PLATT, clm::v1::VENN_ABERS}) {
    ResolvedOptions o;
    o.method = method;
    auto map = FitMap(o, x, y);
    ASSERT_TRUE(map.ok());
    auto compiled = Calibrator::Create(*map);
    ASSERT_TRUE(compiled.ok()) << compiled.status();
    for (int i = -10; i <= 1010; ++i) {
      const double c = i / 1000.0;
      const Calibrated a = ApplyWithBounds(*map, c), b = compiled->ApplyWithBounds(c);
      EXPECT_EQ(a.probability, b.probability) << c;
      EXPECT_EQ(a.lower, b.lower) << c;
      EXPECT_EQ(a.upper, b.upper) << c;
    }
  }
}

TEST(Guard, RefusesBadInput) {
  clm::v1::CalibrationMap map;
  map.set_method(clm::v1::VENN_ABERS);
  const std::vector<double> x = {0.5}, y = {1.0};
  EXPECT_EQ(GuardMap(x, y, 10, 0.95, 10, &map).code(), absl::StatusCode::kInvalidArgument);
  map.set_method(clm::v1::ISOTONIC);
  EXPECT_EQ(GuardMap({}, {}, 10, 0.95, 10, &map).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GuardMap(x, y, 0, 0.95, 10, &map).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clm::calibration
