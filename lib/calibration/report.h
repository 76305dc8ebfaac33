#ifndef CLM_LIB_CALIBRATION_REPORT_H_
#define CLM_LIB_CALIBRATION_REPORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "clm/v1/calibration.pb.h"

namespace clm::calibration {

// A Markdown report for an operator: Summary, MSE before/after (in sample and out of sample, with the
// bootstrap interval and the folds), Reliability, Findings, Slices (symbols, models), Ensemble and Safety,
// each under a "## " heading of that name. Pure function of the result.
std::string RenderMarkdown(const clm::v1::CalibrationResult& result);

// The result as JSON (google::protobuf::util::MessageToJsonString, proto field names, every field printed
// including zeros, indented). Internal on a serialisation failure.
absl::StatusOr<std::string> RenderJson(const clm::v1::CalibrationResult& result);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_REPORT_H_
