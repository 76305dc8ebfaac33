#ifndef CLM_LIB_TRADE_TRADE_H_
#define CLM_LIB_TRADE_TRADE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace clm {

// Outcome values match clm.v1.TradeOutcome.Outcome so conversions are a cast.
enum class Outcome : uint8_t { kWin = 1, kLoss = 2, kNeutral = 3 };

// A stored, validated trade in the form the domain works with: no protobuf, cheap to hold by the million.
struct Trade {
  int64_t seq = 0;  // store sequence number (ingest order, 1-based); 0 when not stored yet
  std::string trade_id;
  std::string symbol;
  std::string model_id;
  double confidence = 0.0;  // predicted probability of WIN, in [0, 1]
  Outcome outcome = Outcome::kNeutral;
  double pnl = 0.0;
  int64_t opened_at_us = 0;  // microseconds since the Unix epoch; 0 when the engine did not send it
  int64_t closed_at_us = 0;  // microseconds since the Unix epoch
  int side = 0;              // clm.v1.TradeOutcome.Side value
  // Per-ensemble-member confidences, sorted by model name.
  std::vector<std::pair<std::string, double>> model_confidences;
};

}  // namespace clm

#endif  // CLM_LIB_TRADE_TRADE_H_
