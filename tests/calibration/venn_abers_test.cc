#include "lib/calibration/venn_abers.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "lib/calibration/isotonic.h"
#include "tests/calibration/ref_data.h"

namespace clm::calibration {
namespace {

using testing::LoadRef;

VennAbersValue Apply(const VennAbersTable& t, double c) {
  return ApplyVennAbers(t.x.data(), t.x.size(), t.p0.data(), t.p1.data(), c);
}

// The definition, one isotonic fit per value: the calibration points plus (c, test_label), evaluated at c.
double NaiveValue(const std::vector<double>& x, const std::vector<double>& y, double c, double test_label) {
  std::vector<double> xs = x;
  std::vector<double> ys = y;
  xs.push_back(c);
  ys.push_back(test_label);
  absl::StatusOr<IsotonicThresholds> fit = FitIsotonic(xs, ys);
  EXPECT_TRUE(fit.ok()) << fit.status();
  if (!fit.ok()) return std::nan("");
  return InterpolateIsotonic(fit->x.data(), fit->y.data(), fit->x.size(), c);
}

class VennAbersVsSklearn : public ::testing::TestWithParam<std::string> {};

TEST_P(VennAbersVsSklearn, SameValuesAtEveryQuery) {
  const auto ref = LoadRef("venn_abers_" + GetParam());
  ASSERT_EQ(ref.sklearn_version, "1.2.1");
  const std::vector<double> x = ref.Column("train", 0);
  const std::vector<double> y = ref.Column("train", 1);
  absl::StatusOr<VennAbersTable> table = FitVennAbers(x, y);
  ASSERT_TRUE(table.ok()) << table.status();
  const std::vector<double> q = ref.Column("predict", 0);
  ASSERT_GT(q.size(), 20u);
  for (size_t i = 0; i < q.size(); ++i) {
    const VennAbersValue v = Apply(*table, q[i]);
    EXPECT_NEAR(v.p0, ref.sections.at("predict")[i][1], 1e-12) << "p0 at " << q[i];
    EXPECT_NEAR(v.p1, ref.sections.at("predict")[i][2], 1e-12) << "p1 at " << q[i];
    EXPECT_NEAR(v.probability, ref.sections.at("predict")[i][3], 1e-12) << "probability at " << q[i];
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, VennAbersVsSklearn,
                         ::testing::Values("random_300", "rounded_300", "all_wins", "all_losses", "single_point",
                                           "two_points", "neutral_half", "overconfident_200"));

TEST(VennAbers, TableLayout) {
  // A loss at 0.4 and a win at 0.7 (given out of order), worked by hand.
  absl::StatusOr<VennAbersTable> t = FitVennAbers({0.7, 0.4}, {1.0, 0.0});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->x, (std::vector<double>{0.4, 0.7}));
  // Entries: below 0.4, at 0.4, between, at 0.7, above 0.7.
  //   p0: (c,0),(0.4,0),(0.7,1) -> 0; tie {0,0} -> 0; (0.4,0),(c,0),(0.7,1) -> 0; tie {1,0} at 0.7 -> 1/2;
  //       (0.4,0),(0.7,1),(c,0) -> pool {1,0} -> 1/2.
  //   p1: (c,1),(0.4,0) pool -> 1/2; tie {0,1} -> 1/2; (0.4,0),(c,1),(0.7,1) -> 1; tie {1,1} -> 1; above -> 1.
  EXPECT_EQ(t->p0, (std::vector<double>{0.0, 0.0, 0.0, 0.5, 0.5}));
  EXPECT_EQ(t->p1, (std::vector<double>{0.5, 0.5, 1.0, 1.0, 1.0}));
  const VennAbersValue below = Apply(*t, 0.1);
  EXPECT_EQ(below.p0, 0.0);
  EXPECT_EQ(below.p1, 0.5);
  EXPECT_DOUBLE_EQ(below.probability, 0.5 / 1.5);
  EXPECT_EQ(Apply(*t, 0.4).p1, 0.5);
  EXPECT_EQ(Apply(*t, 0.5).p1, 1.0);
  EXPECT_EQ(Apply(*t, 0.7).p0, 0.5);
  EXPECT_EQ(Apply(*t, 0.9).p0, 0.5);
  EXPECT_EQ(Apply(*t, -std::numeric_limits<double>::infinity()).p1, 0.5);
  EXPECT_EQ(Apply(*t, std::numeric_limits<double>::infinity()).p0, 0.5);
}

TEST(VennAbers, SinglePointAndConstantLabels) {
  absl::StatusOr<VennAbersTable> one = FitVennAbers({0.6}, {1.0});
  ASSERT_TRUE(one.ok()) << one.status();
  // Below: (c, 0), (0.6, 1) -> 0 | (c, 1), (0.6, 1) -> 1. At: tie {1, 0} -> 1/2 | {1, 1} -> 1. Above: (0.6, 1),
  // (c, 0) pool -> 1/2 | 1.
  EXPECT_EQ(one->p0, (std::vector<double>{0.0, 0.5, 0.5}));
  EXPECT_EQ(one->p1, (std::vector<double>{1.0, 1.0, 1.0}));

  const std::vector<double> x = {0.1, 0.3, 0.3, 0.5, 0.9};
  absl::StatusOr<VennAbersTable> wins = FitVennAbers(x, std::vector<double>(x.size(), 1.0));
  absl::StatusOr<VennAbersTable> losses = FitVennAbers(x, std::vector<double>(x.size(), 0.0));
  ASSERT_TRUE(wins.ok() && losses.ok());
  const size_t last = wins->p0.size() - 1;
  for (size_t e = 0; e <= last; ++e) {
    EXPECT_EQ(wins->p1[e], 1.0) << e;
    EXPECT_EQ(losses->p0[e], 0.0) << e;
    // (c, 0) pools with the wins at or below c, so only below all of them is p0 zero; mirrored for losses.
    if (e > 0) {
      EXPECT_GT(wins->p0[e], 0.0) << e;
    }
    if (e < last) {
      EXPECT_LT(losses->p1[e], 1.0) << e;
    }
  }
  EXPECT_EQ(wins->p0[0], 0.0);
  EXPECT_EQ(wins->p0[1], 0.5);   // at 0.1: the tie {1, 0}, below the wins after it
  EXPECT_EQ(wins->p0[4], 0.75);  // between 0.3 and 0.5: (c, 0) pools with 1, 1, 1 before it
  EXPECT_EQ(losses->p1[last], 1.0);
}

TEST(VennAbers, EqualConfidencesAreOneGroup) {
  // -0.0 == 0.0: one group, stored as 0.0, and a test point at either joins it.
  absl::StatusOr<VennAbersTable> t = FitVennAbers({0.0, -0.0, 0.5}, {1.0, 0.0, 1.0});
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->x.size(), 2u);
  EXPECT_FALSE(std::signbit(t->x[0]));
  EXPECT_EQ(Apply(*t, -0.0).p0, Apply(*t, 0.0).p0);
  EXPECT_EQ(Apply(*t, 0.0).p0, 1.0 / 3.0);  // {1, 0, 0}: the tie group with the test loss
}

TEST(VennAbers, NanGivesNan) {
  absl::StatusOr<VennAbersTable> t = FitVennAbers({0.2, 0.8}, {0.0, 1.0});
  ASSERT_TRUE(t.ok());
  const VennAbersValue v = Apply(*t, std::nan(""));
  EXPECT_TRUE(std::isnan(v.p0));
  EXPECT_TRUE(std::isnan(v.p1));
  EXPECT_TRUE(std::isnan(v.probability));
}

// Random small data sets against NaiveValue at every entry: a query equal to each distinct confidence, one
// between each pair, one below and one above.
TEST(VennAbers, MatchesTheDefinitionOnRandomData) {
  std::mt19937_64 rng(20260214);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  int checked = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const int shape = trial % 5;
    const size_t n = 1 + static_cast<size_t>(u(rng) * (trial % 3 == 0 ? 8 : 40));
    // 0: continuous; 1: 4 distinct values; 2: 12 distinct values; 3: 0/0.5/1 labels with ties; 4: any label.
    const double grid = shape == 1 ? 3.0 : (shape == 2 || shape == 3) ? 11.0 : 0.0;
    const double win_rate = u(rng);
    std::vector<double> x(n), y(n);
    for (size_t i = 0; i < n; ++i) {
      x[i] = grid > 0.0 ? std::round(u(rng) * grid) / grid : u(rng);
      if (shape == 3) {
        y[i] = std::round(u(rng) * 2.0) / 2.0;
      } else if (shape == 4) {
        y[i] = u(rng);
      } else {
        y[i] = u(rng) < win_rate * (0.5 + x[i]) ? 1.0 : 0.0;
      }
    }
    absl::StatusOr<VennAbersTable> t = FitVennAbers(x, y);
    ASSERT_TRUE(t.ok()) << t.status();
    const size_t k = t->x.size();
    ASSERT_EQ(t->p0.size(), 2 * k + 1);
    ASSERT_EQ(t->p1.size(), 2 * k + 1);
    for (size_t e = 0; e <= 2 * k; ++e) {
      double c;
      if (e % 2 == 1) {
        c = t->x[e / 2];
      } else if (e == 0) {
        c = t->x[0] - 0.5;
      } else if (e == 2 * k) {
        c = t->x[k - 1] + 0.5;
      } else {
        c = 0.5 * (t->x[e / 2 - 1] + t->x[e / 2]);
      }
      const double p0 = NaiveValue(x, y, c, 0.0);
      const double p1 = NaiveValue(x, y, c, 1.0);
      ASSERT_NEAR(t->p0[e], p0, 1e-12) << "trial " << trial << " entry " << e << " c " << c;
      ASSERT_NEAR(t->p1[e], p1, 1e-12) << "trial " << trial << " entry " << e << " c " << c;
      const VennAbersValue v = Apply(*t, c);
      ASSERT_EQ(v.p0, t->p0[e]);
      ASSERT_EQ(v.p1, t->p1[e]);
      ++checked;
    }
  }
  EXPECT_GT(checked, 4000);
}

// Larger data, where the hulls are deep and the bridge walks long, at a sample of entries.
TEST(VennAbers, MatchesTheDefinitionOnLargerData) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int trial = 0; trial < 4; ++trial) {
    const size_t n = 3000;
    std::vector<double> x(n), y(n);
    for (size_t i = 0; i < n; ++i) {
      x[i] = trial % 2 ? std::round(u(rng) * 200.0) / 200.0 : u(rng);
      // Non-monotone win rate (a dip in the middle) so that both fits pool over long runs.
      y[i] = u(rng) < 0.3 + 0.4 * std::sin(6.0 * x[i]) * (trial < 2 ? 1.0 : -1.0) ? 1.0 : 0.0;
    }
    absl::StatusOr<VennAbersTable> t = FitVennAbers(x, y);
    ASSERT_TRUE(t.ok()) << t.status();
    const size_t k = t->x.size();
    for (size_t s = 0; s < 60; ++s) {
      const size_t e = s < 2 ? s * 2 * k : static_cast<size_t>(u(rng) * static_cast<double>(2 * k + 1));
      const double c = e % 2        ? t->x[e / 2]
                       : e == 0     ? t->x[0] - 1.0
                       : e == 2 * k ? t->x[k - 1] + 1.0
                                    : 0.5 * (t->x[e / 2 - 1] + t->x[e / 2]);
      ASSERT_NEAR(t->p0[e], NaiveValue(x, y, c, 0.0), 1e-12) << "trial " << trial << " entry " << e;
      ASSERT_NEAR(t->p1[e], NaiveValue(x, y, c, 1.0), 1e-12) << "trial " << trial << " entry " << e;
    }
  }
}

// What a caller relies on, over a fine grid of confidences: 0 <= p0 <= p1 <= 1, a probability strictly inside
// (0, 1), and p0, p1 and the probability's bounds non-decreasing in the confidence.
TEST(VennAbers, IntervalIsOrderedAndMonotone) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int trial = 0; trial < 30; ++trial) {
    const size_t n = 1 + static_cast<size_t>(u(rng) * 500);
    std::vector<double> x(n), y(n);
    for (size_t i = 0; i < n; ++i) {
      x[i] = trial % 2 ? std::round(u(rng) * 50.0) / 50.0 : u(rng);
      y[i] = trial % 3 == 0 ? std::round(u(rng) * 2.0) / 2.0 : (u(rng) < 0.9 - 0.5 * x[i] ? 1.0 : 0.0);
    }
    absl::StatusOr<VennAbersTable> t = FitVennAbers(x, y);
    ASSERT_TRUE(t.ok()) << t.status();
    VennAbersValue prev{-1.0, -1.0, 0.0};
    for (int g = -100; g <= 1100; ++g) {
      const double c = g / 1000.0;
      const VennAbersValue v = Apply(*t, c);
      ASSERT_LE(0.0, v.p0) << c;
      ASSERT_LE(v.p0, v.p1) << c;
      ASSERT_LE(v.p1, 1.0) << c;
      ASSERT_GT(v.probability, 0.0) << c;
      ASSERT_LT(v.probability, 1.0) << c;
      ASSERT_LE(v.p0, v.probability) << c;  // p1 / (1 - p0 + p1) lies within [p0, p1]
      ASSERT_LE(v.probability, v.p1) << c;
      ASSERT_LE(prev.p0, v.p0) << "trial " << trial << " at " << c;
      ASSERT_LE(prev.p1, v.p1) << "trial " << trial << " at " << c;
      prev = v;
    }
    for (size_t e = 1; e < t->p0.size(); ++e) {
      ASSERT_LE(t->p0[e - 1], t->p0[e]) << e;
      ASSERT_LE(t->p1[e - 1], t->p1[e]) << e;
    }
  }
}

TEST(VennAbers, MillionPoints) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const size_t n = 1000000;
  std::vector<double> x(n), y(n);
  for (size_t i = 0; i < n; ++i) {
    x[i] = u(rng);
    y[i] = u(rng) < x[i] * x[i] ? 1.0 : 0.0;
  }
  absl::StatusOr<VennAbersTable> t = FitVennAbers(x, y);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->p0.size(), 2 * t->x.size() + 1);
  // Spot checks against the definition (each a full isotonic fit of a million points) at both ends and in
  // the middle; MatchesTheDefinitionOnLargerData covers every kind of entry.
  const size_t k = t->x.size();
  for (size_t e : {size_t{0}, k | 1, 2 * k}) {
    // Within [0, 2) so that the naive fits take IsotonicFitter's fast path.
    const double c = e % 2 ? t->x[e / 2] : e == 0 ? 0.5 * t->x[0] : 1.5;
    EXPECT_NEAR(t->p0[e], NaiveValue(x, y, c, 0.0), 1e-12) << e;
    EXPECT_NEAR(t->p1[e], NaiveValue(x, y, c, 1.0), 1e-12) << e;
  }
}

TEST(VennAbers, InvalidInputNamesTheArgument) {
  const auto expect_invalid = [](absl::StatusOr<VennAbersTable> r, const std::string& what) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(r.status().message(), what)) << r.status();
  };
  expect_invalid(FitVennAbers({0.1, 0.2}, {1.0}), "label: must have the size of confidence (2), got 1");
  expect_invalid(FitVennAbers({}, {}), "confidence: ");
  expect_invalid(FitVennAbers({0.1, std::nan("")}, {1.0, 0.0}), "confidence[1]: must be finite");
  expect_invalid(FitVennAbers({0.1, 0.2, std::numeric_limits<double>::infinity()}, {1.0, 0.0, 1.0}),
                 "confidence[2]: must be finite");
  expect_invalid(FitVennAbers({0.1, 0.2}, {1.0, 1.5}), "label[1]: must be within [0, 1]");
  expect_invalid(FitVennAbers({0.1, 0.2}, {-0.5, 1.0}), "label[0]: must be within [0, 1]");
  expect_invalid(FitVennAbers({0.1, 0.2}, {std::nan(""), 1.0}), "label[0]: must be within [0, 1]");
}

}  // namespace
}  // namespace clm::calibration
