// CalibrationCache and CompiledCalibration with a fake source: fallback, interpolation, clipping, Platt,
// refusal of invalid maps, and swaps under concurrent readers.
#include "client/lib/calibration_cache.h"

#include <atomic>
#include <cmath>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace clm::client {
namespace {

clm::v1::CalibrationMap Isotonic(std::vector<double> x, std::vector<double> y) {
  clm::v1::CalibrationMap map;
  map.set_method(clm::v1::ISOTONIC);
  for (double v : x) map.add_x_thresholds(v);
  for (double v : y) map.add_y_thresholds(v);
  return map;
}

clm::v1::CalibrationMap Platt(double a, double b) {
  clm::v1::CalibrationMap map;
  map.set_method(clm::v1::PLATT);
  map.set_platt_a(a);
  map.set_platt_b(b);
  return map;
}

// A source the test drives by hand, as the Deployment watch would.
class FakeSource final : public CalibrationSource {
 public:
  absl::Status Start(UpdateFn on_update) override {
    absl::MutexLock lock(&mu_);
    on_update_ = std::move(on_update);
    started_ = true;
    return absl::OkStatus();
  }
  void Stop() override {
    absl::MutexLock lock(&mu_);
    on_update_ = nullptr;
    *stopped_ = true;
  }
  void Deliver(const CalibrationUpdate& update) {
    absl::MutexLock lock(&mu_);
    if (on_update_) on_update_(update);
  }
  void set_stopped_flag(bool* stopped) { stopped_ = stopped; }

 private:
  absl::Mutex mu_;
  UpdateFn on_update_;
  bool started_ = false;
  bool own_stopped_ = false;
  bool* stopped_ = &own_stopped_;
};

TEST(CalibrationCacheTest, WithoutCalibrationReturnsRawConfidence) {
  CalibrationCache cache;
  EXPECT_FALSE(cache.active());
  EXPECT_EQ(cache.Apply(0.63), 0.63);
  EXPECT_EQ(cache.Apply(0.0), 0.0);
}

TEST(CalibrationCacheTest, IsotonicInterpolatesAndClips) {
  CalibrationCache cache;
  ASSERT_TRUE(cache.Publish({1, Isotonic({0.5, 0.7, 0.9}, {0.3, 0.4, 0.8}), "job-1", {}, {}}).ok());
  EXPECT_TRUE(cache.active());
  EXPECT_DOUBLE_EQ(cache.Apply(0.5), 0.3);
  EXPECT_DOUBLE_EQ(cache.Apply(0.6), 0.35);   // halfway between the first two points
  EXPECT_DOUBLE_EQ(cache.Apply(0.8), 0.6);    // halfway between the last two points
  EXPECT_DOUBLE_EQ(cache.Apply(0.75), 0.5);   // a quarter of the way
  EXPECT_DOUBLE_EQ(cache.Apply(0.7), 0.4);    // exactly on a threshold
  EXPECT_DOUBLE_EQ(cache.Apply(0.1), 0.3);    // constant below the first threshold
  EXPECT_DOUBLE_EQ(cache.Apply(0.99), 0.8);   // constant above the last
  EXPECT_DOUBLE_EQ(cache.Apply(-5.0), 0.3);
  EXPECT_TRUE(std::isnan(cache.Apply(std::nan(""))));
  EXPECT_EQ(cache.version(), 1u);
  EXPECT_EQ(cache.label(), "job-1");
}

TEST(CalibrationCacheTest, SinglePointIsotonicIsConstant) {
  absl::StatusOr<CompiledCalibration> c = CompiledCalibration::Compile(Isotonic({0.6}, {0.42}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->Apply(0.1), 0.42);
  EXPECT_DOUBLE_EQ(c->Apply(0.6), 0.42);
  EXPECT_DOUBLE_EQ(c->Apply(0.9), 0.42);
}

TEST(CalibrationCacheTest, PlattIsTheSigmoid) {
  CalibrationCache cache;
  ASSERT_TRUE(cache.Publish({3, Platt(-4.0, 2.0), "platt", {}, {}}).ok());
  for (double c : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    EXPECT_DOUBLE_EQ(cache.Apply(c), 1.0 / (1.0 + std::exp(-4.0 * c + 2.0))) << c;
  }
  EXPECT_DOUBLE_EQ(cache.Apply(0.5), 0.5);
}

TEST(CalibrationCacheTest, InvalidMapIsRefusedAndTheCurrentOneStays) {
  CalibrationCache cache;
  ASSERT_TRUE(cache.Publish({1, Isotonic({0.2, 0.8}, {0.1, 0.9}), "good", {}, {}}).ok());
  absl::Status refused = cache.Publish({2, Isotonic({0.8, 0.2}, {0.1, 0.9}), "bad", {}, {}});
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("x_thresholds[1]: must be greater than the previous threshold"), std::string::npos) << refused;
  EXPECT_EQ(cache.last_error().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.version(), 1u);
  EXPECT_DOUBLE_EQ(cache.Apply(0.5), 0.5);

  EXPECT_FALSE(CompiledCalibration::Compile(Isotonic({}, {})).ok());
  EXPECT_FALSE(CompiledCalibration::Compile(Isotonic({0.1, 0.2}, {0.5})).ok());
  EXPECT_FALSE(CompiledCalibration::Compile(Isotonic({0.1, 0.2}, {0.5, 1.5})).ok());
  EXPECT_FALSE(CompiledCalibration::Compile(Isotonic({0.1, 0.2}, {0.6, 0.5})).ok());
  EXPECT_FALSE(CompiledCalibration::Compile(Platt(std::nan(""), 0.0)).ok());
}

TEST(CalibrationCacheTest, OlderVersionsAreIgnoredAndUnsetMapFallsBack) {
  CalibrationCache cache;
  ASSERT_TRUE(cache.Publish({5, Isotonic({0.0, 1.0}, {0.2, 0.2}), "v5", {}, {}}).ok());
  ASSERT_TRUE(cache.Publish({4, Isotonic({0.0, 1.0}, {0.9, 0.9}), "v4", {}, {}}).ok());
  EXPECT_DOUBLE_EQ(cache.Apply(0.5), 0.2);
  EXPECT_EQ(cache.version(), 5u);
  // Rolled back to "no calibration": raw confidences again.
  ASSERT_TRUE(cache.Publish({6, std::nullopt, "rollback", {}, {}}).ok());
  EXPECT_FALSE(cache.active());
  EXPECT_EQ(cache.Apply(0.77), 0.77);
}

TEST(CalibrationCacheTest, FollowsASourceAndStopsIt) {
  bool stopped = false;
  auto source = std::make_unique<FakeSource>();
  FakeSource* fake = source.get();
  fake->set_stopped_flag(&stopped);
  {
    CalibrationCache cache;
    ASSERT_TRUE(cache.Follow(std::move(source)).ok());
    EXPECT_EQ(cache.Follow(std::make_unique<FakeSource>()).code(), absl::StatusCode::kFailedPrecondition);
    fake->Deliver({1, Isotonic({0.0, 1.0}, {0.0, 0.5}), "v1", {}, {}});
    EXPECT_DOUBLE_EQ(cache.Apply(0.5), 0.25);
    fake->Deliver({2, Platt(0.0, 0.0), "v2", {}, {}});
    EXPECT_DOUBLE_EQ(cache.Apply(0.9), 0.5);
    EXPECT_EQ(cache.label(), "v2");
  }
  EXPECT_TRUE(stopped);
}

// The server's Calibrate picks the symbol's map, then the model's, then the global one; so does the cache,
// and it gives the guard's bounds with the probability.
TEST(CalibrationCacheTest, PicksSymbolThenModelThenGlobalWithBounds) {
  clm::v1::CalibrationMap global = Isotonic({0.0, 1.0}, {0.4, 0.4});
  global.add_guard_x(0.5);
  global.add_guard_lower(0.3);
  global.add_guard_upper(0.45);
  global.add_guard_trades(400);
  clm::v1::SliceMap eth, lgbm, btc_fallback;
  eth.set_key("ETHUSDT");
  *eth.mutable_map() = Isotonic({0.0, 1.0}, {0.6, 0.6});
  lgbm.set_key("lightgbm");
  *lgbm.mutable_map() = Isotonic({0.0, 1.0}, {0.7, 0.7});
  btc_fallback.set_key("BTCUSDT");
  btc_fallback.set_uses_global_map(true);
  *btc_fallback.mutable_map() = Isotonic({0.0, 1.0}, {0.99, 0.99});  // ignored: uses the global map
  CalibrationCache cache;
  const calibration::Calibrated raw = cache.Apply(0.8, "ETHUSDT", "lightgbm");
  EXPECT_EQ(raw.probability, 0.8);
  EXPECT_EQ(raw.lower, 0.8);
  ASSERT_TRUE(cache.Publish({1, global, "v1", {eth, btc_fallback}, {lgbm}}).ok());
  EXPECT_DOUBLE_EQ(cache.Apply(0.8, "ETHUSDT", "lightgbm").probability, 0.6);
  EXPECT_DOUBLE_EQ(cache.Apply(0.8, "SOLUSDT", "lightgbm").probability, 0.7);
  EXPECT_DOUBLE_EQ(cache.Apply(0.8, "BTCUSDT", "xgboost").probability, 0.4);
  const calibration::Calibrated g = cache.Apply(0.8, "", "");
  EXPECT_DOUBLE_EQ(g.probability, 0.4);
  EXPECT_DOUBLE_EQ(g.lower, 0.3);
  EXPECT_DOUBLE_EQ(g.upper, 0.45);
  EXPECT_DOUBLE_EQ(cache.Apply(0.8), 0.4);

  clm::v1::SliceMap broken = eth;
  broken.mutable_map()->set_y_thresholds(0, 2.0);
  absl::Status refused = cache.Publish({2, global, "v2", {broken}, {}});
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("symbol_maps[ETHUSDT]"), std::string::npos) << refused;
  EXPECT_EQ(cache.version(), 1u) << "a refused update leaves the current calibration in force";
}

TEST(CalibrationCacheTest, SwapsUnderConcurrentReaders) {
  CalibrationCache cache;
  // Every map is constant, so a reader sees exactly one of the published values (or the raw input before
  // the first), never a torn mix.
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&] {
      double last = 0.0;
      while (!done.load()) {
        const double p = cache.Apply(0.5);
        const bool raw = p == 0.5;
        const bool published = p >= 0.001 && p <= 0.2 && std::fabs(p * 1000.0 - std::round(p * 1000.0)) < 1e-9;
        if (!raw && !published) bad.fetch_add(1);
        if (published && p < last) bad.fetch_add(1);  // versions only go forward
        if (published) last = p;
        reads.fetch_add(1);
      }
    });
  }
  // Publish only once the readers run, so the swaps really race with reads (on a loaded machine the
  // threads may start late).
  while (reads.load() == 0) std::this_thread::yield();
  for (int v = 1; v <= 200; ++v) {
    const double y = v / 1000.0;
    ASSERT_TRUE(cache.Publish({static_cast<uint64_t>(v), Isotonic({0.0, 1.0}, {y, y}), "v", {}, {}}).ok());
  }
  done.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0u);
  EXPECT_DOUBLE_EQ(cache.Apply(0.5), 0.2);
}

}  // namespace
}  // namespace clm::client
