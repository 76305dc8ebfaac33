#include "lib/calibration/calibrator.h"

#include <cmath>

#include "gtest/gtest.h"

namespace clm::calibration {
namespace {

clm::v1::CalibrationMap Isotonic(std::vector<double> x, std::vector<double> y) {
  clm::v1::CalibrationMap m;
  m.set_method(clm::v1::ISOTONIC);
  m.mutable_x_thresholds()->Add(x.begin(), x.end());
  m.mutable_y_thresholds()->Add(y.begin(), y.end());
  return m;
}

TEST(Calibrator, InterpolatesAndClips) {
  const auto map = Isotonic({0.4, 0.6, 0.8}, {0.2, 0.3, 0.9});
  absl::StatusOr<Calibrator> c = Calibrator::Create(map);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->Apply(0.1), 0.2);   // clipped below
  EXPECT_DOUBLE_EQ(c->Apply(0.4), 0.2);
  EXPECT_NEAR(c->Apply(0.5), 0.25, 1e-15);
  EXPECT_NEAR(c->Apply(0.7), 0.6, 1e-15);
  EXPECT_DOUBLE_EQ(c->Apply(0.8), 0.9);
  EXPECT_DOUBLE_EQ(c->Apply(1.0), 0.9);   // clipped above
  EXPECT_TRUE(std::isnan(c->Apply(std::nan(""))));
  for (double v = -0.05; v <= 1.05; v += 0.01) EXPECT_EQ(c->Apply(v), Apply(map, v)) << v;
}

TEST(Calibrator, SingleThresholdIsConstant) {
  absl::StatusOr<Calibrator> c = Calibrator::Create(Isotonic({0.55}, {0.6}));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->Apply(0.0), 0.6);
  EXPECT_EQ(c->Apply(0.99), 0.6);
}

TEST(Calibrator, Platt) {
  clm::v1::CalibrationMap m;
  m.set_method(clm::v1::PLATT);
  m.set_platt_a(-4.0);
  m.set_platt_b(2.0);
  absl::StatusOr<Calibrator> c = Calibrator::Create(m);
  ASSERT_TRUE(c.ok());
  EXPECT_NEAR(c->Apply(0.5), 0.5, 1e-15);
  EXPECT_NEAR(c->Apply(0.75), 1.0 / (1.0 + std::exp(-1.0)), 1e-15);
}

TEST(Calibrator, RejectsInvalidMaps) {
  const auto code = [](const clm::v1::CalibrationMap& m) { return Calibrator::Create(m).status().code(); };
  EXPECT_EQ(code(Isotonic({}, {})), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Isotonic({0.1, 0.2}, {0.1})), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Isotonic({0.2, 0.2}, {0.1, 0.3})), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Isotonic({0.1, 0.2}, {0.5, 0.3})), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Isotonic({0.1, 0.2}, {0.5, 1.3})), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Isotonic({0.1, std::nan("")}, {0.5, 0.6})), absl::StatusCode::kInvalidArgument);
  clm::v1::CalibrationMap platt;
  platt.set_method(clm::v1::PLATT);
  platt.set_platt_a(INFINITY);
  EXPECT_EQ(code(platt), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(clm::v1::CalibrationMap()), absl::StatusCode::kInvalidArgument);
  const absl::Status s = ValidateMap(Isotonic({0.1, 0.2}, {0.5, 0.3}));
  EXPECT_NE(s.message().find("y_thresholds[1]"), absl::string_view::npos) << s;
}

}  // namespace
}  // namespace clm::calibration
