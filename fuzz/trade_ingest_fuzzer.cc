// Fuzz target `trade_ingest`: bytes -> clm.v1.IngestRequest (the wire form of a batch) -> ValidateTrade,
// Canonicalize, ContentHash -> IngestPipeline -> a real SqliteTradeStore in a temporary directory made once
// per process. Every input's batch is submitted twice and read back, and the ingest contract is checked.
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clm/v1/ingest.pb.h"
#include "clm/v1/trade.pb.h"
#include "fuzz/fuzz_check.h"
#include "lib/ingest/ingest_pipeline.h"
#include "lib/ingest/validation.h"
#include "lib/store/sqlite_trade_store.h"

namespace {

using clm::ingest::FieldError;
using clm::v1::TradeOutcome;

constexpr uint32_t kMaxBatchTrades = 64;  // small, so that oversized batches are reached too
const absl::Duration kFutureTolerance = absl::Minutes(5);

// One store and one pipeline for the whole process, as in the server; removed at exit.
class Harness {
 public:
  Harness() {
    std::string pattern = (std::filesystem::temp_directory_path() / "clm-fuzz-ingest-XXXXXX").string();
    CLM_FUZZ_CHECK(mkdtemp(pattern.data()) != nullptr);
    dir_ = pattern;
    // Removed at a normal exit; after a crash it stays, with the store as the crash left it.
    std::fprintf(stderr, "trade_ingest: store in %s\n", dir_.c_str());
    absl::StatusOr<std::unique_ptr<clm::store::SqliteTradeStore>> store =
        clm::store::SqliteTradeStore::Open((std::filesystem::path(dir_) / "clm.db").string());
    CLM_FUZZ_CHECK(store.ok());
    store_ = *std::move(store);
    clm::ingest::IngestPipeline::Options options;
    options.max_batch_trades = kMaxBatchTrades;
    options.future_tolerance = kFutureTolerance;
    pipeline_ = std::make_unique<clm::ingest::IngestPipeline>(store_.get(), options, nullptr);
  }
  ~Harness() {
    pipeline_.reset();
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  clm::store::SqliteTradeStore& store() { return *store_; }

  // Submits a copy of `trades` and waits for its ack. Batch-level refusals come back as the status.
  absl::StatusOr<clm::v1::IngestAck> Ingest(uint64_t batch_id,
                                            const google::protobuf::RepeatedPtrField<TradeOutcome>& trades) {
    google::protobuf::RepeatedPtrField<TradeOutcome> copy = trades;
    absl::Notification done;
    absl::StatusOr<clm::v1::IngestAck> result;
    absl::Status status = pipeline_->Submit(batch_id, &copy, [&](absl::StatusOr<clm::v1::IngestAck> ack) {
      result = std::move(ack);
      done.Notify();
    });
    if (!status.ok()) return status;
    done.WaitForNotification();
    return result;
  }

 private:
  std::string dir_;
  std::unique_ptr<clm::store::SqliteTradeStore> store_;
  std::unique_ptr<clm::ingest::IngestPipeline> pipeline_;
};

Harness& GetHarness() {
  static Harness harness;
  return harness;
}

// True when a timestamp of the trade lies so close to the clock's edge (now + tolerance) that the few
// milliseconds between two checks may change the verdict: time-dependent comparisons are skipped then.
bool NearClockEdge(const TradeOutcome& trade, absl::Time now) {
  const int64_t edge = absl::ToUnixSeconds(now + kFutureTolerance);
  auto near = [edge](const google::protobuf::Timestamp& ts) {
    return ts.seconds() > edge - 120 && ts.seconds() < edge + 120;
  };
  return near(trade.closed_at()) || near(trade.opened_at());
}

bool HasUnknownFields(const google::protobuf::Message& message) {
  return !message.GetReflection()->GetUnknownFields(message).empty();
}

// The per-trade contract of validation.h, independent of the store.
void CheckTrade(const TradeOutcome& trade, absl::Time now, std::optional<FieldError>* verdict) {
  *verdict = clm::ingest::ValidateTrade(trade, now, kFutureTolerance);
  if (*verdict) {
    CLM_FUZZ_CHECK(!(*verdict)->field.empty());
    CLM_FUZZ_CHECK(!(*verdict)->reason.empty());
    return;
  }
  TradeOutcome canonical = trade;
  clm::ingest::Canonicalize(canonical);
  // Canonical means no unknown fields anywhere (they would make the fingerprint encoding-dependent).
  CLM_FUZZ_CHECK(!HasUnknownFields(canonical));
  CLM_FUZZ_CHECK(!HasUnknownFields(canonical.closed_at()));
  CLM_FUZZ_CHECK(!HasUnknownFields(canonical.opened_at()));
  // A valid trade stays valid once canonical, and canonical is a fixed point.
  CLM_FUZZ_CHECK(!clm::ingest::ValidateTrade(canonical, now, kFutureTolerance));
  const uint64_t hash = clm::ingest::ContentHash(canonical);
  TradeOutcome again = canonical;
  clm::ingest::Canonicalize(again);
  CLM_FUZZ_CHECK(clm::ingest::ContentHash(again) == hash);
  // The fingerprint does not depend on the encoding the client used: re-encode the received trade
  // (different field and map order, unknown fields kept), decode, canonicalize: same fingerprint.
  std::string wire;
  CLM_FUZZ_CHECK(trade.SerializeToString(&wire));
  TradeOutcome resent;
  CLM_FUZZ_CHECK(resent.ParseFromString(wire));
  clm::ingest::Canonicalize(resent);
  CLM_FUZZ_CHECK(clm::ingest::ContentHash(resent) == hash);
}

// What the store reads back for a newly accepted trade is the canonical trade that was sent.
void CheckStored(const clm::Trade& stored, const TradeOutcome& sent) {
  TradeOutcome canonical = sent;
  clm::ingest::Canonicalize(canonical);
  CLM_FUZZ_CHECK(stored.trade_id == canonical.trade_id());
  CLM_FUZZ_CHECK(stored.symbol == canonical.symbol());
  CLM_FUZZ_CHECK(stored.model_id == canonical.model_id());
  CLM_FUZZ_CHECK(stored.confidence == canonical.confidence());
  CLM_FUZZ_CHECK(static_cast<int>(stored.outcome) == static_cast<int>(canonical.outcome()));
  CLM_FUZZ_CHECK(stored.pnl == canonical.pnl());
  CLM_FUZZ_CHECK(stored.side == static_cast<int>(canonical.side()));
  CLM_FUZZ_CHECK(stored.closed_at_us ==
                 canonical.closed_at().seconds() * 1'000'000 + canonical.closed_at().nanos() / 1000);
  if (canonical.has_opened_at()) {
    CLM_FUZZ_CHECK(stored.opened_at_us ==
                   canonical.opened_at().seconds() * 1'000'000 + canonical.opened_at().nanos() / 1000);
  }
  CLM_FUZZ_CHECK(stored.model_confidences.size() == canonical.model_confidences().size());
  for (const auto& [name, value] : stored.model_confidences) {
    auto it = canonical.model_confidences().find(name);
    CLM_FUZZ_CHECK(it != canonical.model_confidences().end());
    CLM_FUZZ_CHECK(it->second == value);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = clm::fuzz::SilenceProtobufLogs();
  (void)quiet;
  clm::v1::IngestRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  Harness& harness = GetHarness();
  const auto& trades = request.trades();
  const size_t n = static_cast<size_t>(trades.size());

  const absl::Time now = absl::Now();
  std::vector<std::optional<FieldError>> verdicts(n);
  bool near_edge = false;
  for (size_t i = 0; i < n; ++i) {
    CheckTrade(trades[static_cast<int>(i)], now, &verdicts[i]);
    near_edge = near_edge || NearClockEdge(trades[static_cast<int>(i)], now);
  }

  absl::StatusOr<int64_t> seq_before = harness.store().MaxSeq();
  CLM_FUZZ_CHECK(seq_before.ok());
  absl::StatusOr<clm::v1::IngestAck> first = harness.Ingest(request.batch_id(), trades);
  if (n == 0 || n > kMaxBatchTrades) {
    // Refused whole, with a reason naming the field, and nothing stored.
    CLM_FUZZ_CHECK(first.status().code() == absl::StatusCode::kInvalidArgument);
    CLM_FUZZ_CHECK(first.status().message().rfind("trades: ", 0) == 0);
    absl::StatusOr<int64_t> seq_after = harness.store().MaxSeq();
    CLM_FUZZ_CHECK(seq_after.ok() && *seq_after == *seq_before);
    return 0;
  }
  CLM_FUZZ_CHECK(first.ok());
  CLM_FUZZ_CHECK(first->batch_id() == request.batch_id());
  // Every trade is accounted for exactly once: accepted, duplicate or rejected.
  CLM_FUZZ_CHECK(first->accepted() + first->duplicates() + static_cast<size_t>(first->rejected_size()) == n);
  std::vector<bool> rejected(n, false);
  int64_t previous_index = -1;
  for (const clm::v1::RejectedTrade& r : first->rejected()) {
    CLM_FUZZ_CHECK(r.index() < n);
    CLM_FUZZ_CHECK(static_cast<int64_t>(r.index()) > previous_index);  // in batch order, each once
    previous_index = r.index();
    rejected[r.index()] = true;
    CLM_FUZZ_CHECK(!r.field().empty() && !r.reason().empty());
    CLM_FUZZ_CHECK(r.trade_id() == trades[static_cast<int>(r.index())].trade_id());
    if (!near_edge) {
      // An invalid trade is rejected for the reason validation gives; a valid one only as a conflict.
      const std::optional<FieldError>& verdict = verdicts[r.index()];
      CLM_FUZZ_CHECK(verdict ? r.field() == verdict->field : r.field() == "trade_id");
    }
  }
  if (!near_edge) {
    for (size_t i = 0; i < n; ++i) CLM_FUZZ_CHECK(rejected[i] || !verdicts[i]);
  }

  // The newly stored trades read back as sent (canonical), and nothing else was stored.
  clm::store::DatasetQuery query;
  query.after_seq = *seq_before;
  absl::StatusOr<std::vector<clm::Trade>> stored = harness.store().LoadTrades(query);
  CLM_FUZZ_CHECK(stored.ok());
  CLM_FUZZ_CHECK(stored->size() == first->accepted());
  for (const clm::Trade& t : *stored) {
    const TradeOutcome* sent = nullptr;
    for (size_t i = 0; i < n && sent == nullptr; ++i) {
      if (!rejected[i] && trades[static_cast<int>(i)].trade_id() == t.trade_id) sent = &trades[static_cast<int>(i)];
    }
    CLM_FUZZ_CHECK(sent != nullptr);
    CheckStored(t, *sent);
  }

  // Sending the same batch again stores nothing new: what was stored or duplicate is now duplicate, and
  // what was rejected is rejected again for the same reason.
  absl::StatusOr<clm::v1::IngestAck> second = harness.Ingest(request.batch_id(), trades);
  CLM_FUZZ_CHECK(second.ok());
  absl::StatusOr<int64_t> seq_after = harness.store().MaxSeq();
  CLM_FUZZ_CHECK(seq_after.ok() && *seq_after == *seq_before + static_cast<int64_t>(first->accepted()));
  if (!near_edge) {
    CLM_FUZZ_CHECK(second->accepted() == 0);
    CLM_FUZZ_CHECK(second->duplicates() == first->accepted() + first->duplicates());
    CLM_FUZZ_CHECK(second->rejected_size() == first->rejected_size());
    for (int i = 0; i < second->rejected_size(); ++i) {
      CLM_FUZZ_CHECK(second->rejected(i).index() == first->rejected(i).index());
      CLM_FUZZ_CHECK(second->rejected(i).field() == first->rejected(i).field());
    }
  }
  return 0;
}
