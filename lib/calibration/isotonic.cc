#include "lib/calibration/isotonic.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"

namespace clm::calibration {
namespace {

// numpy.finfo(np.float64).resolution: sklearn's _make_unique treats confidences closer than this to the first
// confidence of a run as the same confidence.
constexpr double kUniqueResolution = 1e-15;

// Maps a double to an unsigned integer with the same order, so a radix sort on the integer sorts the doubles.
// -0.0 is folded into +0.0 first because sklearn sees them as one value.
inline uint64_t OrderedKey(double v) {
  v += 0.0;
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return (bits & 0x8000000000000000ULL) ? ~bits : (bits | 0x8000000000000000ULL);
}

inline double KeyToDouble(uint64_t key) {
  const uint64_t bits = (key & 0x8000000000000000ULL) ? (key & ~0x8000000000000000ULL) : ~key;
  double v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

}  // namespace

void IsotonicFitter::SortByConfidence(absl::Span<const double> x, absl::Span<const double> y,
                                      absl::Span<const double> weights) {
  sorted_.clear();
  sorted_.reserve(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    // sklearn drops zero-weight points before anything else.
    if (!weights.empty() && !(weights[i] > 0.0)) continue;
    sorted_.push_back(KeyIndex{OrderedKey(x[i]), static_cast<uint32_t>(i)});
  }
  const size_t n = sorted_.size();

  if (n < 2048) {
    // Small inputs: a comparison sort beats the radix sort's fixed histogram cost. The index tie-break makes
    // it stable, like the radix sort below.
    std::sort(sorted_.begin(), sorted_.end(), [](const KeyIndex& a, const KeyIndex& b) {
      return a.key < b.key || (a.key == b.key && a.index < b.index);
    });
  } else {
    // LSD radix sort, 11 bits per pass: O(n), stable, and passes whose digit is the same for every key
    // (common: confidences in [0, 1] share their top bits) are skipped.
    constexpr int kBits = 11;
    constexpr int kPasses = 6;
    constexpr size_t kBuckets = size_t{1} << kBits;
    constexpr uint64_t kMask = kBuckets - 1;
    std::vector<std::array<uint32_t, kBuckets>> hist(kPasses);
    for (auto& h : hist) h.fill(0);
    for (const KeyIndex& e : sorted_) {
      for (int p = 0; p < kPasses; ++p) ++hist[p][(e.key >> (p * kBits)) & kMask];
    }
    scratch_.resize(n);
    for (int p = 0; p < kPasses; ++p) {
      const int shift = p * kBits;
      auto& h = hist[p];
      if (h[(sorted_[0].key >> shift) & kMask] == n) continue;
      uint32_t sum = 0;
      for (size_t b = 0; b < kBuckets; ++b) {
        const uint32_t c = h[b];
        h[b] = sum;
        sum += c;
      }
      for (const KeyIndex& e : sorted_) scratch_[h[(e.key >> shift) & kMask]++] = e;
      sorted_.swap(scratch_);
    }
  }

  // sklearn orders with np.lexsort((y, X)): by confidence, then by label, then by input position. The
  // order inside a run of equal confidences decides the summation order of the merged mean, so follow it.
  size_t run_start = 0;
  for (size_t i = 1; i <= n; ++i) {
    if (i < n && sorted_[i].key == sorted_[run_start].key) continue;
    if (i - run_start > 1) {
      const auto by_label = [&y](const KeyIndex& a, const KeyIndex& b) { return y[a.index] < y[b.index]; };
      auto first = sorted_.begin() + run_start;
      auto last = sorted_.begin() + i;
      if (!std::is_sorted(first, last, by_label)) std::stable_sort(first, last, by_label);
    }
    run_start = i;
  }
}

absl::Status IsotonicFitter::Fit(absl::Span<const double> x, absl::Span<const double> y,
                                 absl::Span<const double> weights, IsotonicThresholds* out) {
  if (x.size() != y.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("y: must have the size of x (", x.size(), "), got ", y.size()));
  }
  if (!weights.empty() && weights.size() != x.size()) {
    return absl::InvalidArgumentError(absl::StrCat("weights: must be empty or have the size of x (",
                                                   x.size(), "), got ", weights.size()));
  }
  if (x.size() >= std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("x: at most 2^32 - 2 points, got ", x.size()));
  }
  bool any_positive = false;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      return absl::InvalidArgumentError(absl::StrCat("x[", i, "]: must be finite, got ", x[i]));
    }
    if (!(y[i] >= 0.0 && y[i] <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat("y[", i, "]: must be within [0, 1], got ", y[i]));
    }
    if (!weights.empty()) {
      if (!std::isfinite(weights[i]) || weights[i] < 0.0) {
        return absl::InvalidArgumentError(
            absl::StrCat("weights[", i, "]: must be finite and >= 0, got ", weights[i]));
      }
      any_positive = any_positive || weights[i] > 0.0;
    }
  }
  if (weights.empty()) any_positive = !x.empty();
  if (!any_positive) {
    return absl::InvalidArgumentError("x: needs at least one point with a positive weight");
  }

  SortByConfidence(x, y, weights);
  const size_t n = sorted_.size();

  // _make_unique: merge equal confidences into their weighted mean label, in sklearn's summation order.
  unique_x_.resize(n);
  unique_y_.resize(n);
  unique_w_.resize(n);
  size_t m = 0;
  double current_x = KeyToDouble(sorted_[0].key);
  double current_y = 0.0;
  double current_w = 0.0;
  for (size_t j = 0; j < n; ++j) {
    const uint32_t idx = sorted_[j].index;
    const double xj = KeyToDouble(sorted_[j].key);
    const double wj = weights.empty() ? 1.0 : weights[idx];
    if (xj - current_x >= kUniqueResolution) {
      unique_x_[m] = current_x;
      unique_w_[m] = current_w;
      unique_y_[m] = current_y / current_w;
      ++m;
      current_x = xj;
      current_w = wj;
      current_y = y[idx] * wj;
    } else {
      current_w += wj;
      current_y += y[idx] * wj;
    }
  }
  unique_x_[m] = current_x;
  unique_w_[m] = current_w;
  unique_y_[m] = current_y / current_w;
  ++m;

  // Pool adjacent violators, the same single pass with back-tracking as sklearn's
  // _inplace_contiguous_isotonic_regression, so block means come out bit-for-bit the same. An active block
  // [i..j] has target[i] == j and target[j] == i; y[i] and w[i] hold its mean and total weight.
  double* yv = unique_y_.data();
  double* wv = unique_w_.data();
  target_.resize(m);
  ptrdiff_t* target = target_.data();
  const ptrdiff_t mm = static_cast<ptrdiff_t>(m);
  for (ptrdiff_t i = 0; i < mm; ++i) target[i] = i;
  ptrdiff_t i = 0;
  while (i < mm) {
    ptrdiff_t k = target[i] + 1;
    if (k == mm) break;
    if (yv[i] < yv[k]) {
      i = k;
      continue;
    }
    double sum_wy = wv[i] * yv[i];
    double sum_w = wv[i];
    while (true) {
      const double prev_y = yv[k];
      sum_wy += wv[k] * yv[k];
      sum_w += wv[k];
      k = target[k] + 1;
      if (k == mm || prev_y < yv[k]) {
        yv[i] = sum_wy / sum_w;
        wv[i] = sum_w;
        target[i] = k - 1;
        target[k - 1] = i;
        if (i > 0) i = target[i - 1];
        break;
      }
    }
  }

  // Expand the blocks, clip to [y_min, y_max] = [0, 1], and keep only the points sklearn keeps: the two ends,
  // and interior points whose value differs from a neighbour's. Flat blocks are expanded implicitly: a point
  // is interior to a flat run exactly when its block value equals both neighbours' values.
  for (ptrdiff_t b = 0; b < mm;) {
    const ptrdiff_t end = target[b] + 1;
    const double v = std::clamp(yv[b], 0.0, 1.0);
    for (ptrdiff_t t = b; t < end; ++t) yv[t] = v;
    b = end;
  }
  out->x.clear();
  out->y.clear();
  for (size_t t = 0; t < m; ++t) {
    const bool keep = t == 0 || t + 1 == m || yv[t] != yv[t - 1] || yv[t] != yv[t + 1];
    if (!keep) continue;
    out->x.push_back(unique_x_[t]);
    out->y.push_back(yv[t]);
  }
  return absl::OkStatus();
}

absl::StatusOr<IsotonicThresholds> FitIsotonic(absl::Span<const double> x, absl::Span<const double> y,
                                               absl::Span<const double> weights) {
  IsotonicFitter fitter;
  IsotonicThresholds out;
  absl::Status status = fitter.Fit(x, y, weights, &out);
  if (!status.ok()) return status;
  return out;
}

double InterpolateIsotonic(const double* x, const double* y, size_t n, double v) {
  if (std::isnan(v)) return v;
  if (n == 1) return y[0];
  if (v <= x[0]) return y[0];
  if (v >= x[n - 1]) return y[n - 1];
  // Branch-free search for the last j in [0, n-2] with x[j] <= v (x[0] <= v holds here).
  const double* base = x;
  size_t len = n - 1;
  while (len > 1) {
    const size_t half = len / 2;
    base = (base[half] <= v) ? base + half : base;
    len -= half;
  }
  const size_t j = static_cast<size_t>(base - x);
  if (x[j] == v) return y[j];
  // numpy.interp's formula, including its retry from the right end when the left one is not finite.
  const double slope = (y[j + 1] - y[j]) / (x[j + 1] - x[j]);
  double r = slope * (v - x[j]) + y[j];
  if (std::isnan(r)) {
    r = slope * (v - x[j + 1]) + y[j + 1];
    if (std::isnan(r) && y[j] == y[j + 1]) r = y[j];
  }
  return std::clamp(r, 0.0, 1.0);
}

}  // namespace clm::calibration
