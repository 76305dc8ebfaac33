#include "bench/ingest/trade_gen.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace clm::bench {
namespace {

constexpr std::array<const char*, 4> kModelIds = {"ensemble_v3", "ensemble_v3", "xgboost_v7", "lightgbm_v5"};
constexpr std::array<const char*, 4> kMembers = {"xgboost", "lightgbm", "lstm", "transformer"};

double Clamp01(double x) { return x < 0.0 ? 0.0 : (x > 1.0 ? 1.0 : x); }

}  // namespace

TradeGenerator::TradeGenerator(Options options) : options_(std::move(options)), rng_(options_.seed) {
  if (options_.now_unix_seconds == 0) {
    // The start of the current hour: a rerun with the same --id_prefix and --seed within the hour sends
    // identical trades, which the server counts as duplicates rather than conflicts.
    const int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    options_.now_unix_seconds = now - now % 3600;
  }
  if (options_.symbols.empty()) options_.symbols = Options().symbols;
}

void TradeGenerator::Fill(uint64_t index, clm::v1::TradeOutcome* out) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<double> noise(0.0, 0.05);
  out->Clear();
  out->set_trade_id(absl::StrCat(options_.id_prefix, "-", index));
  out->set_symbol(options_.symbols[rng_() % options_.symbols.size()]);
  out->set_model_id(kModelIds[rng_() % kModelIds.size()]);

  // The ensemble's confidence, and each member's own estimate scattered around it.
  const double confidence = std::round(Clamp01(0.35 + 0.4 * unit(rng_)) * 1e4) / 1e4;
  out->set_confidence(confidence);
  auto& members = *out->mutable_model_confidences();
  for (const char* member : kMembers) members[member] = std::round(Clamp01(confidence + noise(rng_)) * 1e4) / 1e4;

  // Roughly calibrated outcomes; a few trades close flat.
  const double u = unit(rng_);
  clm::v1::TradeOutcome::Outcome outcome = u < 0.05                      ? clm::v1::TradeOutcome::NEUTRAL
                                           : unit(rng_) < confidence ? clm::v1::TradeOutcome::WIN
                                                                     : clm::v1::TradeOutcome::LOSS;
  out->set_outcome(outcome);
  const double size = std::round((5.0 + 200.0 * unit(rng_)) * 100.0) / 100.0;
  out->set_pnl(outcome == clm::v1::TradeOutcome::WIN    ? size
               : outcome == clm::v1::TradeOutcome::LOSS ? -size
                                                        : 0.0);
  out->set_side(rng_() % 2 == 0 ? clm::v1::TradeOutcome::LONG : clm::v1::TradeOutcome::SHORT);

  // Closed within the window (at least a minute ago), held from one minute to six hours.
  const uint64_t window_ms = static_cast<uint64_t>(options_.window_seconds * 1000);
  int64_t closed_ago_ms = 60'000 + static_cast<int64_t>(rng_() % window_ms);
  if (options_.ascending_close && options_.total > 0) {
    // Evenly spread, oldest first, with up to a second of jitter so neighbours do not tie.
    const double position = static_cast<double>(options_.total - std::min(index, options_.total)) /
                            static_cast<double>(options_.total);
    closed_ago_ms = 60'000 + static_cast<int64_t>(position * static_cast<double>(window_ms)) +
                    static_cast<int64_t>(rng_() % 1000);
  }
  const int64_t closed_ms = options_.now_unix_seconds * 1000 - closed_ago_ms;
  const int64_t held_ms = 60'000 + static_cast<int64_t>(rng_() % (6ULL * 3600 * 1000));
  const int64_t opened_ms = closed_ms - held_ms;
  out->mutable_closed_at()->set_seconds(closed_ms / 1000);
  out->mutable_closed_at()->set_nanos(static_cast<int32_t>(closed_ms % 1000) * 1'000'000);
  out->mutable_opened_at()->set_seconds(opened_ms / 1000);
  out->mutable_opened_at()->set_nanos(static_cast<int32_t>(opened_ms % 1000) * 1'000'000);
}

std::string RandomRunId() {
  std::random_device device;
  uint64_t bits = (static_cast<uint64_t>(device()) << 32) ^ device() ^
                  static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return absl::StrFormat("load-%012x", bits & 0xffffffffffffULL);
}

std::vector<std::string> SplitList(const std::string& list) {
  return absl::StrSplit(list, ',', absl::SkipWhitespace());
}

}  // namespace clm::bench
