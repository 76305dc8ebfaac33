// Isotonic fit + predict throughput. Data: uniform confidences (continuous, few ties) and confidences rounded
// to 0.01 (heavy ties, like the engine's), labels Bernoulli(confidence^2) so PAV has real pooling to do.
#include <cmath>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "lib/calibration/isotonic.h"

namespace clm::calibration {
namespace {

struct Data {
  std::vector<double> x, y;
};

Data Make(size_t n, bool rounded) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Data d;
  d.x.resize(n);
  d.y.resize(n);
  for (size_t i = 0; i < n; ++i) {
    double x = u(rng);
    if (rounded) x = std::round(x * 100.0) / 100.0;
    d.x[i] = x;
    d.y[i] = u(rng) < x * x ? 1.0 : 0.0;
  }
  return d;
}

void FitPredict(benchmark::State& state, bool rounded) {
  const size_t n = static_cast<size_t>(state.range(0));
  const Data d = Make(n, rounded);
  IsotonicFitter fitter;
  IsotonicThresholds t;
  std::vector<double> predicted(n);
  for (auto _ : state) {
    if (!fitter.Fit(d.x, d.y, {}, &t).ok()) state.SkipWithError("fit failed");
    const IsotonicPredictor predict(t.x, t.y);
    predict.Predict(d.x, absl::MakeSpan(predicted));
    benchmark::DoNotOptimize(predicted.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
  state.counters["thresholds"] = static_cast<double>(t.x.size());
}

void BM_IsotonicFitPredict(benchmark::State& state) { FitPredict(state, false); }
void BM_IsotonicFitPredictRounded(benchmark::State& state) { FitPredict(state, true); }

void BM_IsotonicFit(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const Data d = Make(n, false);
  IsotonicFitter fitter;
  IsotonicThresholds t;
  for (auto _ : state) {
    if (!fitter.Fit(d.x, d.y, {}, &t).ok()) state.SkipWithError("fit failed");
    benchmark::DoNotOptimize(t.x.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
}

BENCHMARK(BM_IsotonicFitPredict)->Arg(1000)->Arg(100000)->Arg(1000000)->Arg(10000000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IsotonicFitPredictRounded)
    ->Arg(1000)
    ->Arg(100000)
    ->Arg(1000000)
    ->Arg(10000000)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IsotonicFit)->Arg(1000000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace clm::calibration
