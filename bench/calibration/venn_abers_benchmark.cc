// Venn-Abers fit (sort, tie merging, both sweeps) and lookup. Data as isotonic_benchmark.cc: uniform
// confidences (k close to n, the sweeps' worst case) and confidences rounded to 0.01 (k = 101, the sort's).
#include <cmath>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "lib/calibration/venn_abers.h"

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

void Fit(benchmark::State& state, bool rounded) {
  const size_t n = static_cast<size_t>(state.range(0));
  const Data d = Make(n, rounded);
  size_t k = 0;
  for (auto _ : state) {
    absl::StatusOr<VennAbersTable> t = FitVennAbers(d.x, d.y);
    if (!t.ok()) state.SkipWithError("fit failed");
    k = t->x.size();
    benchmark::DoNotOptimize(t->p1.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
  state.counters["distinct"] = static_cast<double>(k);
}

void BM_VennAbersFit(benchmark::State& state) { Fit(state, false); }
void BM_VennAbersFitRounded(benchmark::State& state) { Fit(state, true); }

void BM_VennAbersApply(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const Data d = Make(n, false);
  const absl::StatusOr<VennAbersTable> t = FitVennAbers(d.x, d.y);
  if (!t.ok()) {
    state.SkipWithError("fit failed");
    return;
  }
  const Data queries = Make(4096, false);
  size_t i = 0;
  for (auto _ : state) {
    const VennAbersValue v =
        ApplyVennAbers(t->x.data(), t->x.size(), t->p0.data(), t->p1.data(), queries.x[i++ & 4095]);
    benchmark::DoNotOptimize(v);
  }
}

BENCHMARK(BM_VennAbersFit)->Arg(1000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_VennAbersFitRounded)->Arg(1000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_VennAbersApply)->Arg(1000)->Arg(1000000);

}  // namespace
}  // namespace clm::calibration
