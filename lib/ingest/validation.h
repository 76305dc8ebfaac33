#ifndef CLM_LIB_INGEST_VALIDATION_H_
#define CLM_LIB_INGEST_VALIDATION_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "clm/v1/trade.pb.h"

namespace clm::ingest {

inline constexpr size_t kMaxTradeIdBytes = 128;
inline constexpr size_t kMaxSymbolBytes = 64;
inline constexpr size_t kMaxModelIdBytes = 128;
inline constexpr size_t kMaxModelConfidences = 32;
inline constexpr size_t kMaxModelNameBytes = 64;

struct FieldError {
  std::string field;   // e.g. "confidence", "model_confidences[xgboost]"
  std::string reason;  // e.g. "must be within [0, 1], got 1.7"
};

// Checks one trade against the ingest contract. `now` bounds closed_at from above, with `future_tolerance`
// of clock skew allowed. Returns the first problem found, or nothing when the trade is valid.
std::optional<FieldError> ValidateTrade(const clm::v1::TradeOutcome& trade, absl::Time now,
                                        absl::Duration future_tolerance);

// Brings a valid trade to its canonical form (no unknown fields, no negative zeros), so that two sends of
// the same trade fingerprint the same whatever the client's encoding.
void Canonicalize(clm::v1::TradeOutcome& trade);

// A stable 64-bit fingerprint (FNV-1a) of the canonical trade's deterministic serialization. Equal content
// gives equal fingerprints in every process and version; different content collides with probability 2^-64.
uint64_t ContentHash(const clm::v1::TradeOutcome& canonical_trade);

}  // namespace clm::ingest

#endif  // CLM_LIB_INGEST_VALIDATION_H_
