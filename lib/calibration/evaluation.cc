#include "lib/calibration/evaluation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/calibration/calibrator.h"
#include "lib/calibration/guard.h"
#include "lib/calibration/metrics.h"
#include "lib/calibration/platt.h"
#include "lib/calibration/venn_abers.h"

namespace clm::calibration {
namespace {

bool Continue(const StageProgress& progress, double fraction) { return !progress || progress(fraction); }

// numpy.percentile's default ("linear") on sorted data.
double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

}  // namespace

absl::StatusOr<clm::v1::CalibrationMap> FitMap(const ResolvedOptions& options, absl::Span<const double> confidence,
                                               absl::Span<const double> label, IsotonicFitter* fitter) {
  clm::v1::CalibrationMap map;
  map.set_trained_on(confidence.size());
  map.set_method(options.method);
  switch (options.method) {
    case clm::v1::PLATT: {
      absl::StatusOr<PlattParams> p = FitPlatt(confidence, label);
      if (!p.ok()) return p.status();
      map.set_platt_a(p->a);
      map.set_platt_b(p->b);
      break;
    }
    case clm::v1::VENN_ABERS: {
      absl::StatusOr<VennAbersTable> table = FitVennAbers(confidence, label);
      if (!table.ok()) return table.status();
      // Lossless compaction: a confidence whose own entry equals the gap entries on both sides changes
      // nothing (a query equal to it would read the merged gap's identical value), so it is left out. Inside
      // an isotonic block the predictor is flat, so continuous confidences shrink to about the block count.
      const size_t k = table->x.size();
      const auto same = [&](size_t a, size_t b) {
        return table->p0[a] == table->p0[b] && table->p1[a] == table->p1[b];
      };
      map.mutable_va_p0()->Add(table->p0[0]);
      map.mutable_va_p1()->Add(table->p1[0]);
      for (size_t i = 0; i < k; ++i) {
        if (same(2 * i, 2 * i + 1) && same(2 * i + 1, 2 * i + 2)) continue;
        map.add_x_thresholds(table->x[i]);
        for (size_t e : {2 * i + 1, 2 * i + 2}) {
          map.add_va_p0(table->p0[e]);
          map.add_va_p1(table->p1[e]);
        }
      }
      if (map.x_thresholds_size() == 0) {  // one value everywhere: keep a single point
        map.add_x_thresholds(table->x[0]);
        for (int e = 0; e < 2; ++e) {
          map.add_va_p0(table->p0[0]);
          map.add_va_p1(table->p1[0]);
        }
      }
      return map;
    }
    case clm::v1::ISOTONIC: {
      IsotonicFitter local;
      IsotonicThresholds t;
      absl::Status s = (fitter ? fitter : &local)->Fit(confidence, label, {}, &t);
      if (!s.ok()) return s;
      map.mutable_x_thresholds()->Add(t.x.begin(), t.x.end());
      map.mutable_y_thresholds()->Add(t.y.begin(), t.y.end());
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("method: must be ISOTONIC, PLATT or VENN_ABERS, got ",
                                                     static_cast<int>(options.method)));
  }
  absl::Status guarded = GuardMap(confidence, label, options.prior_trades, options.ci_level, options.bins, &map);
  if (!guarded.ok()) return guarded;
  return map;
}

std::vector<FoldRange> TimeOrderedFolds(size_t n, int k) {
  std::vector<FoldRange> folds;
  if (k < 1) return folds;
  folds.reserve(k);
  const size_t kk = static_cast<size_t>(k);
  for (size_t f = 0; f < kk; ++f) folds.push_back({f * n / kk, (f + 1) * n / kk});
  return folds;
}

namespace {

// xoshiro256** (Blackman and Vigna), seeded through splitmix64: a fixed, portable sequence for a given seed,
// and several times faster than std::mt19937_64, which dominated whole jobs at a million trades.
class Xoshiro256 final {
 public:
  explicit Xoshiro256(uint64_t seed) {
    for (uint64_t& word : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }
  uint64_t operator()() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace

size_t BootstrapBlockLength(size_t n) {
  return std::max<size_t>(1, static_cast<size_t>(std::llround(std::cbrt(static_cast<double>(n)))));
}

absl::StatusOr<BootstrapInterval> BootstrapImprovement(absl::Span<const double> before_sq,
                                                       absl::Span<const double> after_sq, int resamples,
                                                       uint64_t seed, double level, size_t block_length,
                                                       const StageProgress& progress) {
  BootstrapInterval out;
  const size_t n = before_sq.size();
  if (n == 0 || resamples <= 0) return out;
  if (after_sq.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("after_sq: must have the size of before_sq (", n, "), got ", after_sq.size()));
  }
  const size_t len = std::clamp<size_t>(block_length, 1, n);
  // Block sums by prefix sums over the series and its wrap-around, so a block costs O(1) whatever its length:
  // sum of [j, j + len) = prefix[j + len] - prefix[j], with the series repeated once.
  std::vector<std::pair<double, double>> block(n);
  {
    double before = 0.0, after = 0.0;
    for (size_t i = 0; i < len; ++i) {
      before += before_sq[i];
      after += after_sq[i];
    }
    for (size_t j = 0; j < n; ++j) {
      block[j] = {before, after};
      const size_t out_i = j, in_i = (j + len) % n;
      before += before_sq[in_i] - before_sq[out_i];
      after += after_sq[in_i] - after_sq[out_i];
    }
  }
  const size_t blocks = (n + len - 1) / len;
  Xoshiro256 rng(seed);
  std::vector<double> stats;
  stats.reserve(resamples);
  for (int r = 0; r < resamples; ++r) {
    if (r % 50 == 0 && !Continue(progress, static_cast<double>(r) / resamples)) {
      return absl::CancelledError("calibration cancelled during the bootstrap");
    }
    double before = 0.0, after = 0.0;
    for (size_t b = 0; b < blocks; ++b) {
      // Multiply-shift maps a 64-bit draw onto [0, n) with fixed arithmetic (no library-specific
      // distribution), so a seed gives the same interval everywhere.
      const size_t j = static_cast<size_t>((static_cast<unsigned __int128>(rng()) * n) >> 64);
      before += block[j].first;
      after += block[j].second;
    }
    stats.push_back(ImprovementPct(before, after));
  }
  std::sort(stats.begin(), stats.end());
  const double tail = (1.0 - level) / 2.0;
  out.low = Percentile(stats, tail);
  out.high = Percentile(stats, 1.0 - tail);
  return out;
}

absl::StatusOr<clm::v1::EvaluationResult> Evaluate(absl::Span<const double> confidence,
                                                   absl::Span<const double> label,
                                                   absl::Span<const int64_t> closed_at_us,
                                                   const clm::v1::CalibrationMap& full_map,
                                                   const ResolvedOptions& options, const StageProgress& progress,
                                                   std::vector<double>* out_of_sample, size_t* first_scored) {
  const size_t n = confidence.size();
  if (label.size() != n || closed_at_us.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("label/closed_at_us: must have the size of confidence (", n,
                                                   "), got ", label.size(), " and ", closed_at_us.size()));
  }
  for (size_t i = 1; i < n; ++i) {
    if (closed_at_us[i] < closed_at_us[i - 1]) {
      return absl::InvalidArgumentError(
          absl::StrCat("closed_at_us[", i, "]: points must be ordered by close time, got ", closed_at_us[i],
                       " after ", closed_at_us[i - 1]));
    }
  }
  if (out_of_sample) out_of_sample->clear();
  if (first_scored) *first_scored = n;

  clm::v1::EvaluationResult ev;
  ev.set_folds(options.folds);
  ev.set_ci_level(options.ci_level);
  ev.set_bootstrap_resamples(options.bootstrap_resamples);
  const int blocks = options.folds + 1;
  ev.set_scheme(absl::StrCat("walk-forward: trades ordered by close time in ", blocks,
                             " contiguous blocks; block i >= 1 is scored by a map fitted only on blocks before it "
                             "(expanding window); block 0 only trains"));

  std::vector<double> calibrated(n);
  for (size_t i = 0; i < n; ++i) calibrated[i] = Apply(full_map, confidence[i]);
  *ev.mutable_in_sample_before() = ComputeMetrics(confidence, label, options.bins);
  *ev.mutable_in_sample_after() = ComputeMetrics(calibrated, label, options.bins);
  ev.set_in_sample_improvement_pct(ImprovementPct(ev.in_sample_before().mse(), ev.in_sample_after().mse()));

  const size_t min_points = 2 * static_cast<size_t>(blocks);
  if (n < min_points) {
    ev.set_cross_validated(false);
    ev.set_note(absl::StrCat("out-of-sample evaluation not run: ", n, " labelled trades, walk-forward over ",
                             blocks, " blocks needs at least ", min_points));
    return ev;
  }

  // Block i is scored by a map fitted on blocks 0..i-1: the training set is always a prefix in time.
  const std::vector<FoldRange> folds = TimeOrderedFolds(n, blocks);
  const size_t scored_from = folds[1].begin;
  std::vector<double> oos(n, std::numeric_limits<double>::quiet_NaN());
  IsotonicFitter fitter;
  for (size_t f = 1; f < folds.size(); ++f) {
    if (!Continue(progress, 0.8 * static_cast<double>(f - 1) / (folds.size() - 1))) {
      return absl::CancelledError("calibration cancelled during the walk-forward evaluation");
    }
    const FoldRange fold = folds[f];
    absl::StatusOr<clm::v1::CalibrationMap> map =
        FitMap(options, confidence.subspan(0, fold.begin), label.subspan(0, fold.begin), &fitter);
    if (!map.ok()) return map.status();
    absl::StatusOr<Calibrator> compiled = Calibrator::Create(*map);
    if (!compiled.ok()) return compiled.status();
    for (size_t i = fold.begin; i < fold.end; ++i) oos[i] = compiled->Apply(confidence[i]);
    const size_t len = fold.end - fold.begin;
    clm::v1::FoldResult* fr = ev.add_fold_results();
    fr->set_index(static_cast<int>(f));
    fr->set_train_count(fold.begin);
    fr->set_test_count(len);
    fr->set_test_from_us(closed_at_us[fold.begin]);
    fr->set_test_to_us(closed_at_us[fold.end - 1]);
    fr->set_mse_before(Mse(confidence.subspan(fold.begin, len), label.subspan(fold.begin, len)));
    fr->set_mse_after(Mse(absl::MakeConstSpan(oos).subspan(fold.begin, len), label.subspan(fold.begin, len)));
  }
  const size_t scored = n - scored_from;
  const auto scored_conf = confidence.subspan(scored_from);
  const auto scored_label = label.subspan(scored_from);
  const auto scored_oos = absl::MakeConstSpan(oos).subspan(scored_from);
  ev.set_cross_validated(true);
  ev.set_scored(scored);
  *ev.mutable_out_of_sample_before() = ComputeMetrics(scored_conf, scored_label, options.bins);
  *ev.mutable_out_of_sample_after() = ComputeMetrics(scored_oos, scored_label, options.bins);
  ev.set_improvement_pct(ImprovementPct(ev.out_of_sample_before().mse(), ev.out_of_sample_after().mse()));

  std::vector<double> before_sq(scored), after_sq(scored);
  for (size_t i = 0; i < scored; ++i) {
    before_sq[i] = (scored_conf[i] - scored_label[i]) * (scored_conf[i] - scored_label[i]);
    after_sq[i] = (scored_oos[i] - scored_label[i]) * (scored_oos[i] - scored_label[i]);
  }
  const size_t block_length = BootstrapBlockLength(scored);
  ev.set_interval_method(absl::StrCat("moving-block bootstrap of the ", scored, " scored trades in close-time order (",
                                      options.bootstrap_resamples, " resamples, blocks of ", block_length,
                                      " consecutive trades), percentile interval at ", options.ci_level));
  const StageProgress bootstrap_progress = [&progress](double f) { return Continue(progress, 0.8 + 0.2 * f); };
  absl::StatusOr<BootstrapInterval> ci =
      BootstrapImprovement(before_sq, after_sq, options.bootstrap_resamples, options.seed, options.ci_level,
                           block_length, bootstrap_progress);
  if (!ci.ok()) return ci.status();
  ev.set_improvement_ci_low(ci->low);
  ev.set_improvement_ci_high(ci->high);
  if (out_of_sample) *out_of_sample = std::move(oos);
  if (first_scored) *first_scored = scored_from;
  return ev;
}

}  // namespace clm::calibration
