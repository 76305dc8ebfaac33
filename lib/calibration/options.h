#ifndef CLM_LIB_CALIBRATION_OPTIONS_H_
#define CLM_LIB_CALIBRATION_OPTIONS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "clm/v1/calibration.pb.h"

namespace clm::calibration {

// CalibrationOptions with every default filled in and every value checked. The defaults are the constants
// below; the proto documents the same values.
struct ResolvedOptions {
  static constexpr int kDefaultFolds = 5;
  static constexpr int kDefaultBins = 10;
  static constexpr double kDefaultTolerance = 0.05;
  static constexpr int kDefaultMinBinTrades = 10;
  static constexpr int kDefaultMinSliceTrades = 200;
  static constexpr int kDefaultMinLabelledTrades = 50;
  static constexpr int kDefaultBootstrapResamples = 1000;
  static constexpr uint64_t kDefaultSeed = 1;
  static constexpr double kDefaultMaxShift = 0.25;
  static constexpr double kDefaultRebalanceThreshold = 0.02;
  static constexpr double kDefaultMaxSymbolShare = 0.6;
  static constexpr double kDefaultMaxImprovementGapPct = 10.0;
  static constexpr double kDefaultMinImprovementPct = 0.0;
  static constexpr double kDefaultCiLevel = 0.95;
  static constexpr double kDefaultPriorTrades = 10.0;

  clm::v1::CalibrationMethod method = clm::v1::ISOTONIC;
  int folds = kDefaultFolds;
  int bins = kDefaultBins;
  clm::v1::NeutralHandling neutral_handling = clm::v1::NEUTRAL_EXCLUDE;
  double tolerance = kDefaultTolerance;
  int min_bin_trades = kDefaultMinBinTrades;
  int min_slice_trades = kDefaultMinSliceTrades;
  int min_labelled_trades = kDefaultMinLabelledTrades;
  int bootstrap_resamples = kDefaultBootstrapResamples;
  uint64_t seed = kDefaultSeed;
  double max_shift = kDefaultMaxShift;
  double rebalance_threshold = kDefaultRebalanceThreshold;
  double max_symbol_share = kDefaultMaxSymbolShare;
  double max_improvement_gap_pct = kDefaultMaxImprovementGapPct;
  double min_improvement_pct = kDefaultMinImprovementPct;
  double ci_level = kDefaultCiLevel;
  double prior_trades = kDefaultPriorTrades;

  // The effective options as a message, every field set: what a result reports it ran with.
  clm::v1::CalibrationOptions ToProto() const;
};

// Fills defaults (a 0 / UNSPECIFIED field means the default) and checks ranges. InvalidArgument names the
// field and the reason, e.g. "options.folds: must be within [2, 100], got 1".
absl::StatusOr<ResolvedOptions> ResolveOptions(const clm::v1::CalibrationOptions& options);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_OPTIONS_H_
