#include "lib/calibration/venn_abers.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace clm::calibration {
namespace {

// The algorithm.
//
// Sort the calibration points and merge equal confidences into k groups of weight w_i (the count) and label
// sum s_i. The cumulative sum diagram (CSD) is Q_0 = (0, 0), Q_j = (w_0 + ... + w_{j-1}, s_0 + ... + s_{j-1}),
// and the isotonic regression's value on a group is the slope, over that group's x-interval, of the greatest
// convex minorant (GCM, the lower convex hull) of the CSD.
//
// A test point (c, y) adds d = (1, y) to the CSD. Strictly between c_{a-1} and c_a it is a new group after
// the first a, so the CSD becomes Q_0 .. Q_a, Q_a + d, .. Q_k + d; equal to c_a it joins group a, giving
// Q_0 .. Q_a, Q_{a+1} + d, .. Q_k + d. Translating the part left of the test point by -d (the GCM's slopes do
// not change), both are a left set L_a = {Q_0 - d, .., Q_a - d} followed, after a gap that contains only the
// test point's segment, by a right set R_b = {Q_b, .., Q_k}: (a, b) = (a, a) between, (a, a + 1) at c_a. No
// CSD point lies inside the gap, so the test point's value is the slope of the bridge: the common lower
// tangent of the hull of L_a and the hull of R_b.
//
// The 2k + 1 entries in order are the pairs (0, 0), (0, 1), (1, 1), (1, 2), .., (k, k): each step adds the
// next point on the right of L or removes the first point of R, and either can only raise the bridge's slope
// (the value is a max over left points of a min over right points). A steeper bridge touches each convex
// hull further right, so both ends of the bridge only move right over the whole sweep:
//   * the hull of L grows on the right: a Graham-scan stack, one push per point;
//   * the hull of R shrinks on the left: the hulls of all suffixes are computed once, right to left, as a
//     successor array (next[j] = the vertex after Q_j on the hull of R_j, which then continues as the hull
//     of R_{next[j]}), so the hull of R_b is the chain b, next[b], next[next[b]], ..;
//   * the bridge is found from the previous one by walking its right end along R's chain to the tangent
//     from its left end, then moving its left end one vertex right while that vertex lies strictly below the
//     current line, and repeating. Starting at or left of the new bridge, neither end overshoots it.
// Every step of every walk moves an end right, so a sweep costs O(k) on top of the O(n log n) sort. There is
// one sweep for p0 (d = (1, 0)) and one for p1 (d = (1, 1)). This follows Vovk, Petej and Fedorova's
// CSD-and-stacks algorithm (arXiv:1511.00213, Algorithms 1-4), which gives the entries at the calibration
// confidences only; the sweep over both kinds of pair also gives the entries between them.
//
// Each value is the slope between two CSD points: one division of (label sum + y) by (count + 1) of the
// test point's block, both exact for labels of 0, 0.5 and 1, so the block mean is correctly rounded (sklearn
// accumulates means and may differ in the last bits). The turn tests are cross products of the same exact
// coordinates, so ties (collinear points, equal block means) are decided exactly too; which of several
// collinear points ends the bridge never changes its slope. Other labels make the sums inexact by a few ulps.

struct Point {
  double x;
  double y;
};

// > 0 when o -> a -> b turns left, that is, for a right of o, when b lies strictly above the line through o
// and a; 0 when the three are collinear.
inline double Cross(Point o, Point a, Point b) { return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x); }

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

// Writes the 2k + 1 values for the test label y into out, given the CSD q (k + 1 points) and the suffix hulls'
// successors. `stack` is scratch.
void Sweep(const std::vector<Point>& q, const std::vector<uint32_t>& next, double y, std::vector<uint32_t>* stack,
           double* out) {
  const size_t k = q.size() - 1;
  const auto left = [&q, y](uint32_t j) { return Point{q[j].x - 1.0, q[j].y - y}; };
  std::vector<uint32_t>& st = *stack;
  st.clear();
  size_t l = 0;    // the bridge's left end: a position in st
  uint32_t r = 0;  // the bridge's right end: an index into q, on the hull of the current R
  const auto bridge = [&]() {
    for (;;) {
      const Point lp = left(st[l]);
      while (next[r] != kNone && Cross(lp, q[r], q[next[r]]) <= 0.0) r = next[r];
      if (l + 1 < st.size() && Cross(lp, q[r], left(st[l + 1])) < 0.0) {
        ++l;
        continue;
      }
      const Point rp = q[r];
      return (rp.y - lp.y) / (rp.x - lp.x);
    }
  };
  for (uint32_t a = 0; a <= k; ++a) {
    // L gains Q_a - d. If the bridge's left end is popped, the new point is on or below the old bridge, so it
    // is the new left end.
    const Point p = left(a);
    while (st.size() >= 2 && Cross(left(st[st.size() - 2]), left(st.back()), p) <= 0.0) st.pop_back();
    const bool left_end_popped = l >= st.size();
    st.push_back(a);
    if (left_end_popped) l = st.size() - 1;
    out[2 * a] = bridge();  // (a, a): strictly between c_{a-1} and c_a
    if (a == k) break;
    // R loses Q_a. If that was the right end, the hull of R_{a+1} starts at Q_{a+1}, left of the new end.
    if (r == a) r = a + 1;
    out[2 * a + 1] = bridge();  // (a, a + 1): equal to c_a
  }
}

}  // namespace

absl::StatusOr<VennAbersTable> FitVennAbers(absl::Span<const double> confidence, absl::Span<const double> label) {
  if (confidence.size() != label.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("label: must have the size of confidence (", confidence.size(), "), got ", label.size()));
  }
  if (confidence.empty()) return absl::InvalidArgumentError("confidence: needs at least one point");
  if (confidence.size() >= kNone) {
    return absl::InvalidArgumentError(absl::StrCat("confidence: at most 2^32 - 2 points, got ", confidence.size()));
  }
  const size_t n = confidence.size();
  // One buffer for the points and then, once sorted, the CSD: first touching fresh memory is a good part of a
  // large fit's time.
  std::vector<Point> q;
  q.reserve(n + 1);
  q.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(confidence[i])) {
      return absl::InvalidArgumentError(absl::StrCat("confidence[", i, "]: must be finite, got ", confidence[i]));
    }
    if (!(label[i] >= 0.0 && label[i] <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat("label[", i, "]: must be within [0, 1], got ", label[i]));
    }
    q[i] = Point{confidence[i] + 0.0, label[i]};  // + 0.0 folds -0.0 into 0.0
  }
  // By confidence, then label: the label sums then do not depend on the input order.
  std::sort(q.begin(), q.end(), [](Point a, Point b) { return a.x < b.x || (a.x == b.x && a.y < b.y); });

  // Merge ties. Group g's (count, label sum) is written to q[g], at or before its first point, so no unread
  // point is overwritten; the groups then move up one to make room for Q_0 and are summed into the CSD.
  size_t k = 0;
  for (size_t i = 0; i < n; ++i) k += (i == 0 || q[i].x != q[i - 1].x) ? 1 : 0;
  VennAbersTable table;
  table.x.resize(k);
  for (size_t i = 0, g = 0; i < n; ++g) {
    const double c = q[i].x;
    double w = 0.0;
    double s = 0.0;
    for (; i < n && q[i].x == c; ++i) {
      w += 1.0;
      s += q[i].y;
    }
    table.x[g] = c;
    q[g] = Point{w, s};
  }
  q.resize(k + 1);
  std::move_backward(q.begin(), q.begin() + k, q.begin() + k + 1);
  q[0] = Point{0.0, 0.0};
  for (size_t j = 1; j <= k; ++j) q[j] = Point{q[j - 1].x + q[j].x, q[j - 1].y + q[j].y};

  // next[j]: the successor of Q_j on the lower hull of {Q_j, .., Q_k}, by a Graham scan from the right that
  // drops collinear points.
  std::vector<uint32_t> next(k + 1, kNone);
  std::vector<uint32_t> stack;
  stack.reserve(k + 1);
  for (size_t j = k + 1; j-- > 0;) {
    while (stack.size() >= 2 && Cross(q[j], q[stack.back()], q[stack[stack.size() - 2]]) <= 0.0) stack.pop_back();
    if (!stack.empty()) next[j] = stack.back();
    stack.push_back(static_cast<uint32_t>(j));
  }

  table.p0.resize(2 * k + 1);
  table.p1.resize(2 * k + 1);
  Sweep(q, next, 0.0, &stack, table.p0.data());
  Sweep(q, next, 1.0, &stack, table.p1.data());
  return table;
}

VennAbersValue ApplyVennAbers(const double* x, size_t k, const double* p0, const double* p1, double c) {
  if (std::isnan(c)) return VennAbersValue{c, c, c};
  // The first i with x[i] >= c (k when there is none).
  const size_t i = static_cast<size_t>(std::lower_bound(x, x + k, c) - x);
  const size_t entry = (i < k && x[i] == c) ? 2 * i + 1 : 2 * i;
  VennAbersValue v;
  v.p0 = p0[entry];
  v.p1 = p1[entry];
  v.probability = v.p1 / (1.0 - v.p0 + v.p1);
  return v;
}

}  // namespace clm::calibration
