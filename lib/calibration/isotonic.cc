#include "lib/calibration/isotonic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

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

inline uint64_t DoubleBits(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

inline double BitsDouble(uint64_t bits) {
  double v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// Packed points (see SortPacked): label code (2 * label) in the top two bits, the confidence's bits below.
constexpr int kLabelShift = 62;
constexpr uint64_t kValueMask = (uint64_t{1} << kLabelShift) - 1;

// Radix digits of the bucket ids: 2048 output streams per pass stay in cache.
constexpr int kDigitBits = 11;
constexpr size_t kDigits = size_t{1} << kDigitBits;

inline double KeyToDouble(uint64_t key) {
  const uint64_t bits = (key & 0x8000000000000000ULL) ? (key & ~0x8000000000000000ULL) : ~key;
  double v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

}  // namespace

void IsotonicFitter::SortByConfidence(absl::Span<const double> x, absl::Span<const double> y,
                                      absl::Span<const double> weights, double x_min, double x_max) {
  // Sort by a value bucket first: bucket = floor((x - x_min) * scale) is non-decreasing in x (every step
  // rounds monotonically), so ordering by bucket and then sorting each run of equal buckets sorts the whole.
  // The buckets are ordered by an LSD radix sort on their id, 11 bits per pass (2048 output streams stay in
  // cache, unlike one pass over a million buckets); with about two buckets per point a run holds one or two
  // points on spread-out confidences. Skewed data only makes some runs longer, which std::sort handles.
  size_t n = 0;
  for (size_t i = 0; i < x.size(); ++i) n += (weights.empty() || weights[i] > 0.0) ? 1 : 0;
  int id_bits = 1;
  while (id_bits < 2 * kDigitBits && (size_t{1} << id_bits) < 2 * n) ++id_bits;
  const size_t buckets = size_t{1} << id_bits;
  const double range = x_max - x_min;
  double scale = range > 0.0 ? static_cast<double>(buckets) / range : 0.0;
  if (!std::isfinite(range) || !std::isfinite(scale)) scale = 0.0;  // extreme ranges: one bucket, std::sort
  const auto bucket_of = [x_min, scale, buckets](uint64_t key) -> uint32_t {
    if (scale == 0.0) return 0;
    return static_cast<uint32_t>(std::min(static_cast<size_t>((KeyToDouble(key) - x_min) * scale), buckets - 1));
  };

  sorted_.clear();
  sorted_.reserve(n);
  for (size_t i = 0; i < x.size(); ++i) {
    if (!weights.empty() && !(weights[i] > 0.0)) continue;  // sklearn drops zero-weight points first
    sorted_.push_back(KeyIndex{OrderedKey(x[i]), static_cast<uint32_t>(i)});
  }
  const int passes = (id_bits + kDigitBits - 1) / kDigitBits;
  histogram_.assign(static_cast<size_t>(passes) * kDigits, 0);
  bucket_ids_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t id = bucket_of(sorted_[i].key);
    bucket_ids_[i] = id;
    for (int p = 0; p < passes; ++p) ++histogram_[p * kDigits + ((id >> (p * kDigitBits)) & (kDigits - 1))];
  }
  scratch_.resize(n);
  scratch_ids_.resize(n);
  for (int p = 0; p < passes; ++p) {
    uint32_t* h = &histogram_[p * kDigits];
    const int shift = p * kDigitBits;
    if (n == 0 || h[(bucket_ids_[0] >> shift) & (kDigits - 1)] == n) continue;  // one digit value: in order
    uint32_t sum = 0;
    for (size_t d = 0; d < kDigits; ++d) {
      const uint32_t c = h[d];
      h[d] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; ++i) {
      const uint32_t slot = h[(bucket_ids_[i] >> shift) & (kDigits - 1)]++;
      scratch_[slot] = sorted_[i];
      scratch_ids_[slot] = bucket_ids_[i];
    }
    sorted_.swap(scratch_);
    bucket_ids_.swap(scratch_ids_);
  }

  // sklearn orders with np.lexsort((y, X)): by confidence, then label, then input position.
  const auto lexsort = [&y](const KeyIndex& a, const KeyIndex& b) {
    if (a.key != b.key) return a.key < b.key;
    if (y[a.index] != y[b.index]) return y[a.index] < y[b.index];
    return a.index < b.index;
  };
  size_t run = 0;
  for (size_t i = 1; i <= n; ++i) {
    if (i < n && bucket_ids_[i] == bucket_ids_[run]) continue;
    if (i - run > 1) {
      auto first = sorted_.begin() + run;
      auto last = sorted_.begin() + i;
      if (!std::is_sorted(first, last, lexsort)) std::sort(first, last, lexsort);
    }
    run = i;
  }
}

bool IsotonicFitter::SortPacked(absl::Span<const double> x, absl::Span<const double> y,
                                absl::Span<const double> weights, double x_min, double x_max) {
  // Applies when every kept weight is 1, every label is 0, 0.5 or 1, and every confidence is in [0, 2):
  //   * the merged sums of a run of equal confidences are then exact in any order, so sklearn's order
  //     inside a run (by label, then position) need not be reproduced;
  //   * the top two bits of a double in [0, 2) are zero and its bits sort like its value, so the label code
  //     fits in those bits and a point is one 8-byte word: half the memory traffic of the general path.
  if (!(x_min >= 0.0 && x_max < 2.0)) return false;
  // Checks and packs in one pass. Labels are already known to be in [0, 1] (Fit checked), so 2 * label is
  // in [0, 2], and the label is 0, 0.5 or 1 exactly when 2 * label is an integer: an integer test, no
  // floating-point compares.
  packed_.resize(x.size());
  size_t n = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!weights.empty() && weights[i] != 1.0) {
      if (weights[i] != 0.0) return false;
      continue;
    }
    const double twice = y[i] * 2.0;
    const auto code = static_cast<uint64_t>(twice);
    if (static_cast<double>(code) != twice) return false;
    packed_[n++] = DoubleBits(x[i] + 0.0) | (code << kLabelShift);
  }
  packed_.resize(n);

  // Value buckets ordered by an LSD radix sort on their id, as in SortByConfidence.
  int id_bits = 1;
  while (id_bits < 2 * kDigitBits && (size_t{1} << id_bits) < 2 * n) ++id_bits;
  const size_t buckets = size_t{1} << id_bits;
  const double range = x_max - x_min;
  double scale = range > 0.0 ? static_cast<double>(buckets) / range : 0.0;
  if (!std::isfinite(scale)) scale = 0.0;  // a subnormal range: one bucket, std::sort
  const auto bucket_of = [x_min, scale, buckets](uint64_t word) -> uint32_t {
    const double v = BitsDouble(word & kValueMask);
    return static_cast<uint32_t>(std::min(static_cast<size_t>((v - x_min) * scale), buckets - 1));
  };
  const int passes = (id_bits + kDigitBits - 1) / kDigitBits;
  histogram_.assign(static_cast<size_t>(passes) * kDigits, 0);
  for (uint64_t word : packed_) {
    const uint32_t id = bucket_of(word);
    for (int p = 0; p < passes; ++p) ++histogram_[p * kDigits + ((id >> (p * kDigitBits)) & (kDigits - 1))];
  }
  packed_scratch_.resize(n);
  for (int p = 0; p < passes; ++p) {
    uint32_t* h = &histogram_[p * kDigits];
    const int shift = p * kDigitBits;
    if (n == 0 || h[(bucket_of(packed_[0]) >> shift) & (kDigits - 1)] == n) continue;
    uint32_t sum = 0;
    for (size_t d = 0; d < kDigits; ++d) {
      const uint32_t c = h[d];
      h[d] = sum;
      sum += c;
    }
    for (uint64_t word : packed_) packed_scratch_[h[(bucket_of(word) >> shift) & (kDigits - 1)]++] = word;
    packed_.swap(packed_scratch_);
  }
  const auto by_value = [](uint64_t a, uint64_t b) { return (a & kValueMask) < (b & kValueMask); };
  size_t run = 0;
  uint32_t run_id = n ? bucket_of(packed_[0]) : 0;
  for (size_t i = 1; i <= n; ++i) {
    uint32_t id = 0;
    if (i < n && (id = bucket_of(packed_[i])) == run_id) continue;
    if (i - run > 1) {
      auto first = packed_.begin() + run;
      auto last = packed_.begin() + i;
      if (!std::is_sorted(first, last, by_value)) std::sort(first, last, by_value);
    }
    run = i;
    run_id = id;
  }
  return true;
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
  double x_min = std::numeric_limits<double>::infinity();
  double x_max = -std::numeric_limits<double>::infinity();
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
      if (!(weights[i] > 0.0)) continue;
    }
    x_min = std::min(x_min, x[i]);
    x_max = std::max(x_max, x[i]);
  }
  if (weights.empty()) any_positive = !x.empty();
  if (!any_positive) {
    return absl::InvalidArgumentError("x: needs at least one point with a positive weight");
  }

  const bool packed = SortPacked(x, y, weights, x_min, x_max);
  if (!packed) SortByConfidence(x, y, weights, x_min, x_max);
  const size_t n = packed ? packed_.size() : sorted_.size();

  // _make_unique: merge equal confidences into their weighted mean label, in sklearn's summation order.
  unique_x_.resize(n);
  unique_y_.resize(n);
  unique_w_.resize(n);
  size_t m = 0;
  double current_x = packed ? BitsDouble(packed_[0] & kValueMask) : KeyToDouble(sorted_[0].key);
  double current_y = 0.0;
  double current_w = 0.0;
  for (size_t j = 0; j < n; ++j) {
    double xj, yj, wj;
    if (packed) {
      xj = BitsDouble(packed_[j] & kValueMask);
      yj = 0.5 * static_cast<double>(packed_[j] >> kLabelShift);
      wj = 1.0;
    } else {
      const uint32_t idx = sorted_[j].index;
      xj = KeyToDouble(sorted_[j].key);
      yj = y[idx];
      wj = weights.empty() ? 1.0 : weights[idx];
    }
    if (xj - current_x >= kUniqueResolution) {
      unique_x_[m] = current_x;
      unique_w_[m] = current_w;
      // A lone point of weight 1 is its own mean: y / 1.0 == y exactly, and most points of continuous
      // confidences are alone, so the division is skipped where it cannot change a bit.
      unique_y_[m] = current_w == 1.0 ? current_y : current_y / current_w;
      ++m;
      current_x = xj;
      current_w = wj;
      current_y = yj * wj;
    } else {
      current_w += wj;
      current_y += yj * wj;
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
  // 32-bit links (n < 2^32 is checked above) halve this array's memory traffic.
  target_.resize(m);
  uint32_t* target = target_.data();
  const ptrdiff_t mm = static_cast<ptrdiff_t>(m);
  for (ptrdiff_t i = 0; i < mm; ++i) target[i] = static_cast<uint32_t>(i);
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
        target[i] = static_cast<uint32_t>(k - 1);
        target[k - 1] = static_cast<uint32_t>(i);
        if (i > 0) i = target[i - 1];
        break;
      }
    }
  }

  // Clip each block to [y_min, y_max] = [0, 1] and keep only the points sklearn keeps: the two ends, and
  // points whose value differs from a neighbour's. Inside a block every value is equal, so only a block's
  // first and last points can be kept: walking the blocks (hundreds) instead of the points (up to millions)
  // gives the same thresholds without expanding the blocks.
  out->x.clear();
  out->y.clear();
  const ptrdiff_t last = mm - 1;
  double left = 0.0;  // the value of the point before the current block (unused for the first block)
  for (ptrdiff_t b = 0; b < mm;) {
    const ptrdiff_t end = target[b] + 1;
    const double v = std::clamp(yv[b], 0.0, 1.0);
    const bool has_next = end < mm;
    const double next = has_next ? std::clamp(yv[end], 0.0, 1.0) : v;
    const double first_right = end - b > 1 ? v : next;
    if (b == 0 || b == last || v != left || v != first_right) {
      out->x.push_back(unique_x_[b]);
      out->y.push_back(v);
    }
    if (end - b > 1 && (end - 1 == last || v != next)) {
      out->x.push_back(unique_x_[end - 1]);
      out->y.push_back(v);
    }
    left = v;
    b = end;
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

namespace {

// numpy.interp's formula on [x[j], x[j + 1]], x[j] <= v < x[j + 1], including its retry from the right end
// when the left one is not finite; clamped to [0, 1].
// The same with the segment's slope computed once beforehand (numpy.interp precomputes slopes too when it
// predicts more points than it has thresholds); the slope is the same double, so the result is identical.
inline double InterpolateSegmentWithSlope(const double* x, const double* y, size_t j, double slope, double v) {
  if (x[j] == v) return y[j];
  double r = slope * (v - x[j]) + y[j];
  if (std::isnan(r)) {
    r = slope * (v - x[j + 1]) + y[j + 1];
    if (std::isnan(r) && y[j] == y[j + 1]) r = y[j];
  }
  return std::clamp(r, 0.0, 1.0);
}

inline double InterpolateSegment(const double* x, const double* y, size_t j, double v) {
  return InterpolateSegmentWithSlope(x, y, j, (y[j + 1] - y[j]) / (x[j + 1] - x[j]), v);
}

}  // namespace

IsotonicPredictor::IsotonicPredictor(std::vector<double> x, std::vector<double> y)
    : x_(std::move(x)), y_(std::move(y)) {
  const size_t n = x_.size();
  if (n >= 2) {
    slopes_.resize(n - 1);
    for (size_t j = 0; j + 1 < n; ++j) slopes_[j] = (y_[j + 1] - y_[j]) / (x_[j + 1] - x_[j]);
  }
  if (n < 3) return;  // at most one segment: nothing to search
  const double range = x_[n - 1] - x_[0];
  const size_t cells = std::min<size_t>(2 * n, size_t{1} << 20);
  inv_width_ = static_cast<double>(cells) / range;
  if (!std::isfinite(inv_width_)) inv_width_ = 0.0;  // subnormal or overflowing range: one cell
  const size_t used = inv_width_ > 0.0 ? cells : 1;
  start_.assign(used, 0);
  // start_[c] = the last j <= n - 2 whose cell is before c: Cell is non-decreasing in v, so such x_[j] is below
  // every v of cell c, and the search may start there.
  size_t j = 0;
  for (size_t c = 0; c < used; ++c) {
    while (j + 1 <= n - 2 && Cell(x_[j + 1]) < c) ++j;
    start_[c] = static_cast<uint32_t>(j);
  }
}

size_t IsotonicPredictor::Cell(double v) const {
  if (inv_width_ == 0.0) return 0;
  return std::min(static_cast<size_t>((v - x_[0]) * inv_width_), start_.size() - 1);
}

double IsotonicPredictor::operator()(double v) const {
  const size_t n = x_.size();
  if (std::isnan(v)) return v;
  if (n == 1) return y_[0];
  if (v <= x_[0]) return y_[0];
  if (v >= x_[n - 1]) return y_[n - 1];
  size_t j = start_.empty() ? 0 : start_[Cell(v)];
  while (j + 2 < n && x_[j + 1] <= v) ++j;
  return InterpolateSegmentWithSlope(x_.data(), y_.data(), j, slopes_[j], v);
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
  return InterpolateSegment(x, y, static_cast<size_t>(base - x), v);
}

}  // namespace clm::calibration
