#include "lib/calibration/engine.h"

#include <algorithm>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/calibration/evaluation.h"
#include "lib/calibration/findings.h"
#include "lib/calibration/labels.h"
#include "lib/calibration/metrics.h"
#include "lib/calibration/options.h"
#include "lib/calibration/safety.h"

namespace clm::calibration {
namespace {

// Column view of labelled trades, the form the fitting and scoring functions take.
struct Columns {
  std::vector<double> confidence;
  std::vector<double> label;
  std::vector<int64_t> closed_at_us;

  void Add(const LabelledTrade& t) {
    confidence.push_back(t.trade->confidence);
    label.push_back(t.label);
    closed_at_us.push_back(t.trade->closed_at_us);
  }
};

// Maps a stage's own [0, 1] progress into [begin, end] of the whole run.
StageProgress Stage(const ProgressOrCancel& progress, double begin, double end) {
  return [&progress, begin, end](double f) { return !progress || progress(begin + (end - begin) * f); };
}

absl::Status Check(const StageProgress& stage, double f) {
  if (!stage(f)) return absl::CancelledError("calibration cancelled");
  return absl::OkStatus();
}

// The figures and the map of one symbol or model id. `indices` point into the global, time-ordered set.
absl::Status BuildSlice(const std::string& key, const std::vector<size_t>& indices, const Columns& all,
                        const clm::v1::CalibrationMap& global_map, const std::vector<double>& global_oos,
                        size_t global_first_scored, const ResolvedOptions& options, clm::v1::SliceResult* result,
                        clm::v1::SliceMap* map) {
  Columns cols;
  for (size_t i : indices) {
    cols.confidence.push_back(all.confidence[i]);
    cols.label.push_back(all.label[i]);
    cols.closed_at_us.push_back(all.closed_at_us[i]);
  }
  const size_t n = indices.size();
  result->set_key(key);
  result->set_labelled(n);
  map->set_key(key);
  map->set_labelled(n);
  *result->mutable_before() = ComputeMetrics(cols.confidence, cols.label, options.bins);
  const auto bins = ReliabilityBins(cols.confidence, cols.label, options.bins, options.min_bin_trades);
  for (const auto& b : bins) *result->add_bins() = b;
  for (auto& f : FindMiscalibration(bins, options.tolerance)) *result->add_findings() = std::move(f);

  if (n >= static_cast<size_t>(options.min_slice_trades)) {
    absl::StatusOr<clm::v1::CalibrationMap> own = FitMap(options, cols.confidence, cols.label);
    if (!own.ok()) return own.status();
    // The slice's own walk-forward figures; its bootstrap is skipped because safety decisions use the
    // global interval, and a slice's interval would multiply the cost by the number of slices.
    ResolvedOptions slice_options = options;
    slice_options.bootstrap_resamples = 0;
    absl::StatusOr<clm::v1::EvaluationResult> ev =
        Evaluate(cols.confidence, cols.label, cols.closed_at_us, *own, slice_options, nullptr, nullptr);
    if (!ev.ok()) return ev.status();
    result->set_uses_global_map(false);
    map->set_uses_global_map(false);
    *map->mutable_map() = *own;
    *result->mutable_after() = ev->in_sample_after();
    if (ev->cross_validated()) {
      result->set_out_of_sample(true);
      result->set_out_of_sample_mse_after(ev->out_of_sample_after().mse());
      result->set_improvement_pct(ImprovementPct(ev->out_of_sample_before().mse(), ev->out_of_sample_after().mse()));
    }
  } else {
    const std::string note = absl::StrCat(n, " labelled trades < ", options.min_slice_trades,
                                          " needed for an own map: using the global map");
    result->set_uses_global_map(true);
    result->set_note(note);
    map->set_uses_global_map(true);
    map->set_note(note);
    *map->mutable_map() = global_map;
    std::vector<double> calibrated(n);
    for (size_t k = 0; k < n; ++k) calibrated[k] = Apply(global_map, cols.confidence[k]);
    *result->mutable_after() = ComputeMetrics(calibrated, cols.label, options.bins);
    // Out of sample through the global walk-forward: each scored trade was scored by a map fitted only on
    // earlier trades. The raw figure it is compared with covers the same trades.
    std::vector<double> raw, oos, labels;
    for (size_t k = 0; k < n && !global_oos.empty(); ++k) {
      if (indices[k] < global_first_scored) continue;
      raw.push_back(cols.confidence[k]);
      oos.push_back(global_oos[indices[k]]);
      labels.push_back(cols.label[k]);
    }
    if (!oos.empty()) {
      result->set_out_of_sample(true);
      result->set_out_of_sample_mse_after(Mse(oos, labels));
      result->set_improvement_pct(ImprovementPct(Mse(raw, labels), result->out_of_sample_mse_after()));
    }
  }
  result->set_in_sample_improvement_pct(ImprovementPct(result->before().mse(), result->after().mse()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<clm::v1::CalibrationResult> RunCalibration(const std::vector<clm::Trade>& trades,
                                                          const clm::v1::CalibrationOptions& options_in,
                                                          const EnsembleWeights& current_weights,
                                                          const ProgressOrCancel& progress_or_cancel) {
  absl::StatusOr<ResolvedOptions> resolved = ResolveOptions(options_in);
  if (!resolved.ok()) return resolved.status();
  const ResolvedOptions& options = *resolved;
  absl::Status st;
  if (!(st = Check(Stage(progress_or_cancel, 0.0, 0.0), 0.0)).ok()) return st;

  absl::StatusOr<LabelledSet> labelled = SelectLabelled(trades, options.neutral_handling);
  if (!labelled.ok()) return labelled.status();

  clm::v1::CalibrationResult result;
  *result.mutable_options() = options.ToProto();
  result.set_trades_total(trades.size());
  result.set_trades_used(labelled->trades.size());
  result.set_trades_excluded(labelled->excluded);
  result.set_wins(labelled->wins);
  result.set_losses(labelled->losses);
  result.set_neutrals(labelled->neutrals);

  Columns all;
  all.confidence.reserve(labelled->trades.size());
  all.label.reserve(labelled->trades.size());
  all.closed_at_us.reserve(labelled->trades.size());
  for (const LabelledTrade& t : labelled->trades) all.Add(t);
  const size_t n = all.confidence.size();
  double min_conf = 0.0, max_conf = 1.0;
  if (n > 0) {
    double sum = 0.0;
    for (double y : all.label) sum += y;
    result.set_base_rate(sum / static_cast<double>(n));
    result.set_first_closed_at_us(all.closed_at_us.front());
    result.set_last_closed_at_us(all.closed_at_us.back());
    const auto [lo, hi] = std::minmax_element(all.confidence.begin(), all.confidence.end());
    min_conf = *lo;
    max_conf = *hi;
  }

  const auto before_bins = ReliabilityBins(all.confidence, all.label, options.bins, options.min_bin_trades);
  for (const auto& b : before_bins) *result.add_reliability_before() = b;
  for (auto& f : FindMiscalibration(before_bins, options.tolerance)) *result.add_findings() = std::move(f);

  std::vector<double> oos;
  size_t first_scored = n;
  if (n > 0) {
    absl::StatusOr<clm::v1::CalibrationMap> global = FitMap(options, all.confidence, all.label);
    if (!global.ok()) return global.status();
    *result.mutable_global_map() = *global;
    if (!(st = Check(Stage(progress_or_cancel, 0.0, 0.1), 1.0)).ok()) return st;

    absl::StatusOr<clm::v1::EvaluationResult> ev =
        Evaluate(all.confidence, all.label, all.closed_at_us, *global, options,
                 Stage(progress_or_cancel, 0.1, 0.6), &oos, &first_scored);
    if (!ev.ok()) return ev.status();
    *result.mutable_evaluation() = *ev;

    // Reliability after calibration: out of sample (the walk-forward's scored trades) when available, since
    // in-sample isotonic bins are calibrated by construction and would say nothing.
    result.set_reliability_after_out_of_sample(!oos.empty());
    std::vector<double> after;
    absl::Span<const double> labels = all.label;
    if (!oos.empty()) {
      after.assign(oos.begin() + first_scored, oos.end());
      labels = labels.subspan(first_scored);
    } else {
      after.resize(n);
      for (size_t i = 0; i < n; ++i) after[i] = Apply(*global, all.confidence[i]);
    }
    for (const auto& b : ReliabilityBins(after, labels, options.bins, options.min_bin_trades)) {
      *result.add_reliability_after() = b;
    }
  } else {
    result.mutable_evaluation()->set_folds(options.folds);
    result.mutable_evaluation()->set_note("no labelled trades: nothing to calibrate or evaluate");
  }

  // Slices, in key order so results are reproducible.
  std::map<std::string, std::vector<size_t>> by_symbol, by_model;
  for (size_t i = 0; i < n; ++i) {
    by_symbol[labelled->trades[i].trade->symbol].push_back(i);
    const std::string& model = labelled->trades[i].trade->model_id;
    if (!model.empty()) by_model[model].push_back(i);
  }
  if (n > 0) {
    const size_t total = by_symbol.size() + by_model.size();
    size_t done = 0;
    const StageProgress slice_stage = Stage(progress_or_cancel, 0.6, 0.95);
    for (const auto& [key, idx] : by_symbol) {
      if (!(st = Check(slice_stage, static_cast<double>(done++) / total)).ok()) return st;
      st = BuildSlice(key, idx, all, result.global_map(), oos, first_scored, options, result.add_symbol_slices(),
                      result.add_symbol_maps());
      if (!st.ok()) return st;
    }
    for (const auto& [key, idx] : by_model) {
      if (!(st = Check(slice_stage, static_cast<double>(done++) / total)).ok()) return st;
      st = BuildSlice(key, idx, all, result.global_map(), oos, first_scored, options, result.add_model_slices(),
                      result.add_model_maps());
      if (!st.ok()) return st;
    }
  }

  *result.mutable_ensemble() =
      CheckEnsemble(labelled->trades, current_weights, options.rebalance_threshold);
  *result.mutable_safety() = ValidateSafety(result, options, min_conf, max_conf);
  if (!(st = Check(Stage(progress_or_cancel, 0.0, 1.0), 1.0)).ok()) return st;
  return result;
}

}  // namespace clm::calibration
