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

// The width of the bucket ids for n points: at least two buckets per point (few points share one), in whole
// radix passes, since a pass costs the same whatever its width, and the widest ids leave the fewest points
// sharing a bucket. At most two passes (4M buckets): beyond that, buckets hold more points instead.
inline int BucketIdBits(size_t n) {
  int bits = 1;
  while (bits < 2 * kDigitBits && (size_t{1} << bits) < 2 * n) ++bits;
  return (bits + kDigitBits - 1) / kDigitBits * kDigitBits;
}

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
  const int id_bits = BucketIdBits(n);
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
  const int passes = id_bits / kDigitBits;
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

void IsotonicFitter::SortPacked(double x_min, double x_max) {
  const size_t n = packed_.size();
  // Value buckets ordered by an LSD radix sort on their id, as in SortByConfidence.
  const int id_bits = BucketIdBits(n);
  const size_t buckets = size_t{1} << id_bits;
  const double range = x_max - x_min;
  double scale = range > 0.0 ? static_cast<double>(buckets) / range : 0.0;
  if (!std::isfinite(scale)) scale = 0.0;  // a subnormal range: one bucket, std::sort
  // 0 <= v - x_min <= range, so the product is within [0, buckets] (one rounding above at most) and the signed
  // conversion (one instruction, unlike the unsigned one) is exact.
  const auto max_id = static_cast<int64_t>(buckets - 1);
  const auto bucket_of = [x_min, scale, max_id](uint64_t word) -> uint32_t {
    const double v = BitsDouble(word & kValueMask);
    return static_cast<uint32_t>(std::min(static_cast<int64_t>((v - x_min) * scale), max_id));
  };
  const int passes = id_bits / kDigitBits;
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
  // Points of different buckets are now in order (bucket_of is non-decreasing in the value), so every inversion
  // left is inside a bucket. Spread-out data leaves few and short ones: one sequential insertion pass fixes
  // them without computing a bucket id again. Skewed data (many points in a bucket) could make that quadratic,
  // so it gives up after n moves and sorts each bucket's run instead; an interrupted insertion pass leaves the
  // points ordered by bucket, since it never moves a point past one of a smaller value.
  uint64_t* a = packed_.data();
  size_t moves = 0;
  uint64_t prev = n ? a[0] & kValueMask : 0;
  for (size_t i = 1; i < n; ++i) {
    const uint64_t word = a[i];
    const uint64_t v = word & kValueMask;  // non-negative doubles: the bits order like the values
    if (v >= prev) {
      prev = v;
      continue;
    }
    size_t j = i;
    do {
      a[j] = a[j - 1];
      --j;
    } while (j > 0 && (a[j - 1] & kValueMask) > v);
    a[j] = word;
    moves += i - j;
    if (moves > n) break;
  }
  if (moves <= n) return;
  const auto by_value = [](uint64_t a, uint64_t b) { return (a & kValueMask) < (b & kValueMask); };
  size_t run = 0;
  uint32_t run_id = bucket_of(packed_[0]);
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
}

size_t IsotonicFitter::PackPoints(absl::Span<const double> x, absl::Span<const double> y,
                                  absl::Span<const double> weights, double* x_min, double* x_max) {
  // The packed form applies while every kept weight is 1, every label is 0, 0.5 or 1, and every confidence is
  // in [0, 2):
  //   * the merged sums of a run of equal confidences are then exact in any order, so sklearn's order
  //     inside a run (by label, then position) need not be reproduced;
  //   * the top two bits of a double in [0, 2) are zero and its bits sort like its value, so the label code
  //     fits in those bits and a point is one 8-byte word: half the memory traffic of the general path.
  // A point that packs is also valid, so this pass is the validation pass too for the common case.
  packed_.resize(x.size());
  uint64_t* out = packed_.data();
  // Raw pointers: absl::Span's operator[] is bounds-checked in Debian's hardened build.
  const double* px = x.data();
  const double* py = y.data();
  const double* pw = weights.empty() ? nullptr : weights.data();
  constexpr uint64_t kTwoBits = 0x4000000000000000ULL;  // the bits of 2.0
  double lo = *x_min;
  double hi = *x_max;
  size_t n = 0;
  size_t i = 0;
  for (; i < x.size(); ++i) {
    if (pw != nullptr && pw[i] != 1.0) {
      // sklearn drops zero-weight points first, but they must still be valid.
      if (pw[i] != 0.0 || !std::isfinite(px[i]) || !(py[i] >= 0.0 && py[i] <= 1.0)) break;
      continue;
    }
    // Unsigned compare of the bits of x + 0.0 (-0.0 folded into +0.0): below those of 2.0 exactly for x in
    // [0, 2); negatives, infinities and NaNs all compare above.
    const double xi = px[i] + 0.0;
    const uint64_t bits = DoubleBits(xi);
    // The label is 0, 0.5 or 1 exactly when 2 * label is an integer in [0, 2] (then the signed conversion,
    // one instruction, is exact).
    const double twice = py[i] * 2.0;
    if (bits >= kTwoBits || !(twice >= 0.0 && twice <= 2.0)) break;
    const auto code = static_cast<uint64_t>(static_cast<int64_t>(twice));
    if (static_cast<double>(code) != twice) break;
    lo = std::min(lo, xi);
    hi = std::max(hi, xi);
    out[n++] = bits | (code << kLabelShift);
  }
  packed_.resize(n);
  *x_min = lo;
  *x_max = hi;
  return i;
}

template <typename Points>
size_t IsotonicFitter::Pool(const Points& points, size_t n) {
  if (block_capacity_ < n) {
    // Default-initialised: a fit touches only the blocks it uses, usually a small fraction.
    blocks_.reset(new Block[n]);
    block_capacity_ = n;
  }
  Block* const s = blocks_.get();

  // The points in sorted order as sklearn's _make_unique leaves them: confidences closer than 1e-15 to the
  // first of their run are merged into it, with the weighted mean label, summed in sorted order. `raw` is the
  // next merged point not yet pooled.
  size_t pos = 0;
  Block raw{};
  bool has_raw = false;
  const auto next_raw = [&points, &pos, &raw, &has_raw, n]() {
    has_raw = pos < n;
    if (!has_raw) return;
    double xj, yj, wj;
    points(pos++, &xj, &yj, &wj);
    const double first_x = xj;
    double sum_y = yj * wj;
    double sum_w = wj;
    while (pos < n) {
      points(pos, &xj, &yj, &wj);
      if (xj - first_x >= kUniqueResolution) break;
      sum_w += wj;
      sum_y += yj * wj;
      ++pos;
    }
    // A lone point of weight 1 is its own mean: y / 1.0 == y exactly, and most points of continuous
    // confidences are alone, so the division is skipped where it cannot change a bit.
    raw = Block{sum_w == 1.0 ? sum_y : sum_y / sum_w, sum_w, first_x, first_x};
  };

  // Pool adjacent violators exactly as sklearn's _inplace_contiguous_isotonic_regression does over the merged
  // points, with the same comparisons and the same sums in the same order, so block means come out bit-for-bit
  // the same; but streaming: its array of points becomes a stack of the blocks formed so far, s[0..top], fed
  // from `raw`. sklearn's cursor i only ever backs up by one block after a merge, and everything past the block
  // after i is unmerged, so the cursor c is top or top - 1, and the block after it is s[top] or `raw`. The
  // stack holds as many blocks as the fit of the points seen so far (hundreds for calibration data), so it
  // stays in cache instead of writing and rereading arrays of every merged point.
  next_raw();
  s[0] = raw;
  next_raw();
  size_t top = 0;
  size_t c = 0;
  while (c < top || has_raw) {
    const double next_y = c < top ? s[top].y : raw.y;
    if (s[c].y < next_y) {
      if (c == top) {
        s[++top] = raw;
        next_raw();
      }
      c = top;
      continue;
    }
    double sum_wy = s[c].w * s[c].y;
    double sum_w = s[c].w;
    double prev_y, x_last;
    if (c < top) {
      prev_y = s[top].y;
      sum_wy += s[top].w * s[top].y;
      sum_w += s[top].w;
      x_last = s[top].x_last;
    } else {
      prev_y = raw.y;
      sum_wy += raw.w * raw.y;
      sum_w += raw.w;
      x_last = raw.x_last;
      next_raw();
    }
    while (has_raw && !(prev_y < raw.y)) {
      prev_y = raw.y;
      sum_wy += raw.w * raw.y;
      sum_w += raw.w;
      x_last = raw.x_last;
      next_raw();
    }
    s[c].y = sum_wy / sum_w;
    s[c].w = sum_w;
    s[c].x_last = x_last;
    top = c;
    if (c > 0) --c;
  }
  return top + 1;
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
  double x_min = std::numeric_limits<double>::infinity();
  double x_max = -std::numeric_limits<double>::infinity();
  // Points before `checked` packed, so they are valid; the rest are checked here, and any of them means the
  // general path.
  const size_t checked = PackPoints(x, y, weights, &x_min, &x_max);
  bool any_positive = !packed_.empty();
  for (size_t i = checked; i < x.size(); ++i) {
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
      if (!(weights[i] > 0.0)) continue;
    }
    any_positive = true;
    x_min = std::min(x_min, x[i]);
    x_max = std::max(x_max, x[i]);
  }
  if (!any_positive) {
    return absl::InvalidArgumentError("x: needs at least one point with a positive weight");
  }

  size_t blocks;
  if (checked == x.size()) {
    SortPacked(x_min, x_max);
    const uint64_t* packed = packed_.data();
    blocks = Pool(
        [packed](size_t j, double* xj, double* yj, double* wj) {
          *xj = BitsDouble(packed[j] & kValueMask);
          *yj = 0.5 * static_cast<double>(packed[j] >> kLabelShift);
          *wj = 1.0;
        },
        packed_.size());
  } else {
    SortByConfidence(x, y, weights, x_min, x_max);
    const KeyIndex* sorted = sorted_.data();
    const double* label = y.data();
    const double* weight = weights.empty() ? nullptr : weights.data();
    blocks = Pool(
        [sorted, label, weight](size_t j, double* xj, double* yj, double* wj) {
          *xj = KeyToDouble(sorted[j].key);
          *yj = label[sorted[j].index];
          *wj = weight ? weight[sorted[j].index] : 1.0;
        },
        sorted_.size());
  }

  // Clip each block to [y_min, y_max] = [0, 1] and keep only the points sklearn keeps: the two ends, and
  // points whose value differs from a neighbour's. Inside a block every value is equal, so only a block's
  // first and last points can be kept: walking the blocks (hundreds) instead of the points (up to millions)
  // gives the same thresholds without expanding the blocks. A block holds more than one merged point exactly
  // when its first and last confidences differ.
  out->x.clear();
  out->y.clear();
  const Block* s = blocks_.get();
  const size_t last = blocks - 1;
  double left = 0.0;  // the value of the point before the current block (unused for the first block)
  for (size_t b = 0; b < blocks; ++b) {
    const double v = std::clamp(s[b].y, 0.0, 1.0);
    const bool wide = s[b].x_first != s[b].x_last;
    const double next = b < last ? std::clamp(s[b + 1].y, 0.0, 1.0) : v;
    const double first_right = wide ? v : next;
    if (b == 0 || (b == last && !wide) || v != left || v != first_right) {
      out->x.push_back(s[b].x_first);
      out->y.push_back(v);
    }
    if (wide && (b == last || v != next)) {
      out->x.push_back(s[b].x_last);
      out->y.push_back(v);
    }
    left = v;
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
  // Eight cells per threshold: a cell then rarely holds a threshold, so the scan after the table lookup almost
  // never moves and its branch is predictable (with two per threshold it moved about a third of the time).
  const double range = x_[n - 1] - x_[0];
  const size_t cells = std::min<size_t>(8 * n, size_t{1} << 20);
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

inline double IsotonicPredictor::Evaluate(double v) const {
  const size_t n = x_.size();
  if (std::isnan(v)) return v;
  if (n == 1) return y_[0];
  if (v <= x_[0]) return y_[0];
  if (v >= x_[n - 1]) return y_[n - 1];
  size_t j = start_.empty() ? 0 : start_[Cell(v)];
  // v < x_[n - 1] stops the scan at j <= n - 2 without a bound check.
  while (x_[j + 1] <= v) ++j;
  return InterpolateSegmentWithSlope(x_.data(), y_.data(), j, slopes_[j], v);
}

double IsotonicPredictor::operator()(double v) const { return Evaluate(v); }

void IsotonicPredictor::Predict(absl::Span<const double> v, absl::Span<double> out) const {
  const size_t count = std::min(v.size(), out.size());
  const size_t n = x_.size();
  if (start_.empty()) {
    for (size_t i = 0; i < count; ++i) out[i] = Evaluate(v[i]);
    return;
  }
  // Evaluate with the loop invariants hoisted and the per-point branches reduced to ones that are rarely
  // taken: the range test (NaN and both ends go to Evaluate), the scan (rarely moves with eight cells per
  // threshold) and the non-finite retry. Same operations on the same doubles, so the same results.
  const double* x = x_.data();
  const double* y = y_.data();
  const double* slopes = slopes_.data();
  const uint32_t* start = start_.data();
  const double* in = v.data();
  double* result = out.data();
  const double lo = x[0];
  const double hi = x[n - 1];
  const double inv_width = inv_width_;
  const size_t last_cell = start_.size() - 1;
  for (size_t i = 0; i < count; ++i) {
    const double q = in[i];
    if (!(q > lo && q < hi)) {
      result[i] = Evaluate(q);
      continue;
    }
    // lo < q < hi, so the product is within [0, cells] and a signed conversion (one instruction, unlike the
    // unsigned one Cell uses) gives the same cell.
    const auto cell = static_cast<size_t>(static_cast<int64_t>((q - lo) * inv_width));
    size_t j = start[std::min(cell, last_cell)];
    while (x[j + 1] <= q) ++j;
    const double xj = x[j];
    const double r = slopes[j] * (q - xj) + y[j];
    if (std::isnan(r)) {
      result[i] = InterpolateSegmentWithSlope(x, y, j, slopes[j], q);
      continue;
    }
    // std::clamp(r, 0.0, 1.0) for a non-NaN r, as two compare-selects.
    const double below_one = 1.0 < r ? 1.0 : r;
    const double clamped = 0.0 > below_one ? 0.0 : below_one;
    // numpy.interp returns y[j] itself at a threshold. Tied data hits thresholds at random, so this is a
    // select on the bits, not a branch.
    const uint64_t at_threshold = uint64_t{0} - static_cast<uint64_t>(xj == q);
    result[i] = BitsDouble((DoubleBits(y[j]) & at_threshold) | (DoubleBits(clamped) & ~at_threshold));
  }
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
