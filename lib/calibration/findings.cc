#include "lib/calibration/findings.h"

#include "absl/strings/str_format.h"

namespace clm::calibration {
namespace {

// Enough decimals to print bin edges exactly for the usual bin counts (10 -> "0.50", 1000 -> "0.505").
int EdgeDecimals(size_t bins) {
  if (bins <= 100 && 100 % bins == 0) return 2;
  if (bins <= 1000 && 1000 % bins == 0) return 3;
  return 4;
}

clm::v1::Finding::Kind KindOf(const clm::v1::ReliabilityBin& b, double tolerance) {
  if (b.count() == 0 || b.thin()) return clm::v1::Finding::FINDING_KIND_UNSPECIFIED;
  if (b.gap() > tolerance) return clm::v1::Finding::FINDING_OVER_CONFIDENT;
  if (b.gap() < -tolerance) return clm::v1::Finding::FINDING_UNDER_CONFIDENT;
  return clm::v1::Finding::FINDING_KIND_UNSPECIFIED;
}

}  // namespace

std::vector<clm::v1::Finding> FindMiscalibration(const std::vector<clm::v1::ReliabilityBin>& bins,
                                                 double tolerance) {
  std::vector<clm::v1::Finding> out;
  const int decimals = EdgeDecimals(bins.empty() ? 1 : bins.size());
  size_t i = 0;
  while (i < bins.size()) {
    const clm::v1::Finding::Kind kind = KindOf(bins[i], tolerance);
    if (kind == clm::v1::Finding::FINDING_KIND_UNSPECIFIED) {
      ++i;
      continue;
    }
    size_t j = i;
    double sum_p = 0.0, sum_y = 0.0;
    uint64_t count = 0;
    while (j < bins.size() && KindOf(bins[j], tolerance) == kind) {
      const double n = static_cast<double>(bins[j].count());
      sum_p += bins[j].mean_predicted() * n;
      sum_y += bins[j].observed_rate() * n;
      count += bins[j].count();
      ++j;
    }
    clm::v1::Finding f;
    f.set_lo(bins[i].lo());
    f.set_hi(bins[j - 1].hi());
    f.set_kind(kind);
    f.set_count(count);
    f.set_mean_predicted(sum_p / static_cast<double>(count));
    f.set_observed(sum_y / static_cast<double>(count));
    f.set_text(absl::StrFormat(
        "predictions %.*f-%.*f: %s, observed win rate %.1f%% vs mean predicted %.1f%% (%d trades)", decimals,
        f.lo(), decimals, f.hi(),
        kind == clm::v1::Finding::FINDING_OVER_CONFIDENT ? "over-confident" : "under-confident",
        f.observed() * 100.0, f.mean_predicted() * 100.0, count));
    out.push_back(std::move(f));
    i = j;
  }
  return out;
}

}  // namespace clm::calibration
