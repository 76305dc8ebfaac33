#ifndef CLM_LIB_CALIBRATION_FINDINGS_H_
#define CLM_LIB_CALIBRATION_FINDINGS_H_

#include <vector>

#include "clm/v1/calibration.pb.h"

namespace clm::calibration {

// Turns a reliability diagram into statements an operator can act on. A bin is over-confident when
// gap > tolerance, under-confident when gap < -tolerance; thin and empty bins make no statement and end a
// range (a range is only claimed where every bin in it has enough trades). Adjacent bins of the same kind
// form one finding whose observed rate and mean prediction are pooled over the range's trades, e.g.
// "predictions 0.50-0.70: over-confident, observed win rate 38.2% vs mean predicted 60.3% (212 trades)".
// Findings come out in increasing confidence order.
std::vector<clm::v1::Finding> FindMiscalibration(const std::vector<clm::v1::ReliabilityBin>& bins,
                                                 double tolerance);

}  // namespace clm::calibration

#endif  // CLM_LIB_CALIBRATION_FINDINGS_H_
