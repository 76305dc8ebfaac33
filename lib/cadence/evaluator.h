#ifndef CLM_LIB_CADENCE_EVALUATOR_H_
#define CLM_LIB_CADENCE_EVALUATOR_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "clm/v1/cadence.pb.h"

namespace clm::cadence {

// The labelled data set as the trade store sees it, for one scope (all trades, a symbol or a model id).
struct DataSnapshot {
  uint64_t total = 0;  // every trade in scope: wins + losses + neutrals
  uint64_t wins = 0;
  uint64_t losses = 0;
  uint64_t neutrals = 0;
  int64_t first_closed_at_us = 0;  // microseconds since the Unix epoch; ignored when total == 0
  int64_t last_closed_at_us = 0;
  std::vector<std::pair<std::string, uint64_t>> symbols;  // trades per symbol, any order
  std::vector<std::string> model_ids;                     // any order
  // Trades in scope stored after the data the last training used; every trade when never trained.
  uint64_t new_trades_since_training = 0;
};

// Trainings are global (a calibration covers every symbol), whatever the scope of the snapshot.
struct TrainingState {
  int64_t last_training_at_us = 0;  // 0: never trained
  uint64_t total_trainings = 0;
};

// Evaluates `policy` over the data. Pure and deterministic: the same arguments give the same report, with
// generated_at = now. `policy` should come from ResolvePolicy; unset fields are read as their defaults.
//
// Gates compare exact values: a share of exactly 0.20 passes a 0.20 minimum, 3 days of span pass a 3-day
// minimum. Rounding happens only in the text fields (percent with one decimal, days with one decimal,
// more decimals where one would hide why a comparison failed).
//
// `scope_symbol` / `scope_model_id` are only copied into the report; the snapshot is already scoped.
clm::v1::CadenceReport Evaluate(const clm::v1::CadencePolicy& policy, const DataSnapshot& data,
                                const TrainingState& training, clm::v1::LearningMode mode, absl::Time now,
                                const std::string& scope_symbol = "", const std::string& scope_model_id = "");

// A multi-line, human-readable rendering of a report (for the CLI and logs).
std::string FormatReportText(const clm::v1::CadenceReport& report);

}  // namespace clm::cadence

#endif  // CLM_LIB_CADENCE_EVALUATOR_H_
