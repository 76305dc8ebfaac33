#include "client/clmctl/commands.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "client/lib/connection.h"
#include "client/lib/legacy_trade_log.h"
#include "client/lib/trade_streamer.h"
#include "clm/v1/cadence.grpc.pb.h"
#include "clm/v1/calibration_job.grpc.pb.h"
#include "clm/v1/deployment.grpc.pb.h"
#include "clm/v1/ingest.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/client_context.h"
#include "lib/auth/credentials.h"
#include "lib/cadence/evaluator.h"

namespace clm::clmctl {
namespace {

using clm::v1::TradeOutcome;
using google::protobuf::util::TimeUtil;

// ---------------------------------------------------------------------------------------------------------
// Argument parsing.

// Flags that take no value; every other flag takes one ("--name=value" or "--name value").
const std::set<std::string>& BoolFlags() {
  static const auto* flags = new std::set<std::string>{"json", "tls", "help", "no_wait", "identity", "skip_invalid",
                                                       "skip_shadow"};
  return *flags;
}

const std::vector<std::string>& GlobalFlags() {
  static const auto* flags = new std::vector<std::string>{"server", "timeout", "json", "tls",  "tls_ca",
                                                          "tls_cert", "tls_key", "token", "token_file", "help"};
  return *flags;
}

// Any command's flag or a global one (commands are defined below).
bool KnownFlag(const std::string& name);

struct ParsedArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;  // names with '-' normalised to '_'
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

ParsedArgs ParseArgs(const std::vector<std::string>& args) {
  ParsedArgs parsed;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-' || arg == "-") {
      parsed.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    absl::string_view body = absl::StripPrefix(absl::StripPrefix(arg, "-"), "-");
    std::string name;
    std::string value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = std::string(body.substr(0, eq));
      value = std::string(body.substr(eq + 1));
      has_value = true;
    } else {
      name = std::string(body);
    }
    absl::StrReplaceAll({{"-", "_"}}, &name);
    if (name == "h") name = "help";
    if (BoolFlags().count(name) > 0) {
      if (has_value && value != "true" && value != "false") {
        throw UsageError(absl::StrCat("flag --", name, " takes no value (or true/false), got \"", value, "\""));
      }
      if (!has_value) value = "true";
    } else if (!has_value) {
      if (!KnownFlag(name)) throw UsageError(absl::StrCat("unknown flag --", name, " (run 'clmctl --help')"));
      if (i + 1 >= args.size()) throw UsageError(absl::StrCat("flag --", name, " needs a value"));
      value = args[++i];
    }
    parsed.flags[name] = value;
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------------------------
// Formatting helpers.

// absl::StatusCode and grpc::StatusCode share google.rpc.Code's numbering and names.
std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

std::string FormatTimestamp(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(t.seconds()), absl::UTCTimeZone());
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) return "{}";
  return json;
}

std::string Pct(double fraction) { return absl::StrFormat("%.1f%%", fraction * 100.0); }

// A left-aligned text table.
std::string Table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size() && c < width.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&width](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c + 1 == cells.size()) {
        absl::StrAppend(&out, cells[c]);
      } else {
        absl::StrAppend(&out, cells[c], std::string(width[c] - cells[c].size() + 2, ' '));
      }
    }
    return absl::StrCat(absl::StripTrailingAsciiWhitespace(out), "\n");
  };
  std::string out = line(header);
  for (const auto& row : rows) absl::StrAppend(&out, line(row));
  return out;
}

std::string ProgressBar(double progress) {
  const int width = 30;
  const int filled = std::clamp(static_cast<int>(std::lround(progress * width)), 0, width);
  return absl::StrCat("[", std::string(filled, '#'), std::string(width - filled, '-'), "] ",
                      absl::StrFormat("%3.0f%%", progress * 100.0));
}

// ---------------------------------------------------------------------------------------------------------
// Commands.

struct Context {
  ParsedArgs args;
  std::vector<std::string> operands;  // positional arguments after the command words
  client::ConnectionOptions connection;
  absl::Duration timeout = absl::Seconds(10);
  bool json = false;
  std::shared_ptr<grpc::Channel> channel;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  std::istream* in = nullptr;

  bool Has(const std::string& flag) const { return args.flags.count(flag) > 0; }
  std::string Flag(const std::string& flag, const std::string& fallback = "") const {
    auto it = args.flags.find(flag);
    return it == args.flags.end() ? fallback : it->second;
  }
  int64_t IntFlag(const std::string& flag, int64_t fallback, int64_t min, int64_t max) const {
    if (!Has(flag)) return fallback;
    int64_t value = 0;
    if (!absl::SimpleAtoi(Flag(flag), &value) || value < min || value > max) {
      throw UsageError(absl::StrCat("--", flag, ": must be an integer in [", min, ", ", max, "], got \"",
                                    Flag(flag), "\""));
    }
    return value;
  }
  std::unique_ptr<grpc::ClientContext> Call(bool with_deadline = true) const {
    auto context = std::make_unique<grpc::ClientContext>();
    if (with_deadline) context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    client::ApplyMetadata(client::CallMetadata(connection), context.get());
    return context;
  }
};

// Prints a failed call and maps it to the exit code.
int Fail(const Context& ctx, const grpc::Status& status) {
  *ctx.err << "error: " << CodeName(status.error_code()) << ": " << status.error_message() << "\n";
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ? kExitUnreachable : kExitServerError;
}

struct Command {
  std::string name;       // "status", "mode set", ...
  std::string synopsis;   // operands and flags
  std::string summary;    // one line
  std::vector<std::string> flags;
  size_t min_operands = 0;
  size_t max_operands = 0;
  bool needs_server = true;
  std::function<int(Context&)> run;
};

clm::v1::DatasetFilter FilterFromFlags(const Context& ctx) {
  clm::v1::DatasetFilter filter;
  filter.set_symbol(ctx.Flag("symbol"));
  filter.set_model_id(ctx.Flag("model"));
  for (const char* flag : {"from", "to"}) {
    if (!ctx.Has(flag)) continue;
    absl::StatusOr<absl::Time> t = client::ParseTimeText(ctx.Flag(flag));
    if (!t.ok()) throw UsageError(absl::StrCat("--", flag, ": ", t.status().message()));
    google::protobuf::Timestamp* ts =
        std::string(flag) == "from" ? filter.mutable_closed_from() : filter.mutable_closed_to();
    ts->set_seconds(absl::ToUnixSeconds(*t));
    ts->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(*t - absl::FromUnixSeconds(ts->seconds()))));
  }
  return filter;
}

int CmdStatus(Context& ctx) {
  auto stub = clm::v1::CadenceStatus::NewStub(ctx.channel);
  clm::v1::GetStatusRequest request;
  request.set_symbol(ctx.Flag("symbol"));
  request.set_model_id(ctx.Flag("model"));
  clm::v1::CadenceReport report;
  grpc::Status status = stub->GetStatus(ctx.Call().get(), request, &report);
  if (!status.ok()) return Fail(ctx, status);
  *ctx.out << (ctx.json ? ToJson(report) + "\n" : cadence::FormatReportText(report));
  return kExitOk;
}

int CmdWatch(Context& ctx) {
  const int64_t count = ctx.IntFlag("count", 0, 0, 1'000'000'000);
  auto stub = clm::v1::CadenceStatus::NewStub(ctx.channel);
  auto call = ctx.Call(/*with_deadline=*/false);
  auto reader = stub->WatchStatus(call.get(), clm::v1::WatchStatusRequest());
  clm::v1::CadenceReport report;
  int64_t seen = 0;
  while (reader->Read(&report)) {
    if (ctx.json) {
      *ctx.out << ToJson(report) << "\n";
    } else {
      if (seen > 0) *ctx.out << "\n";
      *ctx.out << cadence::FormatReportText(report);
    }
    ctx.out->flush();
    if (++seen == count) {
      call->TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (seen == count && count > 0) return kExitOk;
  if (!status.ok()) return Fail(ctx, status);
  return kExitOk;
}

std::string ModeChangeText(const clm::v1::ModeChange& change) {
  return absl::StrCat(clm::v1::LearningMode_Name(change.from_mode()), " -> ",
                      clm::v1::LearningMode_Name(change.to_mode()), " at ", FormatTimestamp(change.changed_at()),
                      " by ", change.changed_by(), ": ", change.reason());
}

int CmdModeGet(Context& ctx) {
  auto stub = clm::v1::CadenceStatus::NewStub(ctx.channel);
  clm::v1::GetPolicyResponse response;
  grpc::Status status = stub->GetPolicy(ctx.Call().get(), clm::v1::GetPolicyRequest(), &response);
  if (!status.ok()) return Fail(ctx, status);
  if (ctx.json) {
    *ctx.out << ToJson(response) << "\n";
    return kExitOk;
  }
  *ctx.out << "mode: " << clm::v1::LearningMode_Name(response.mode()) << "\n";
  *ctx.out << "last change: "
           << (response.has_last_mode_change() ? ModeChangeText(response.last_mode_change()) : "never") << "\n";
  return kExitOk;
}

void RequireByAndReason(const Context& ctx);

int CmdModeSet(Context& ctx) {
  std::string name = absl::AsciiStrToUpper(ctx.operands[0]);
  absl::StrReplaceAll({{"-", "_"}}, &name);
  clm::v1::LearningMode mode;
  if (!clm::v1::LearningMode_Parse(name, &mode) || mode == clm::v1::LEARNING_MODE_UNSPECIFIED) {
    throw UsageError(absl::StrCat("MODE must be logging_only, auto_calibrate or auto_shadow, got \"",
                                  ctx.operands[0], "\""));
  }
  RequireByAndReason(ctx);
  auto stub = clm::v1::CadenceStatus::NewStub(ctx.channel);
  clm::v1::SetModeRequest request;
  request.set_mode(mode);
  request.set_changed_by(ctx.Flag("by"));
  request.set_reason(ctx.Flag("reason"));
  clm::v1::SetModeResponse response;
  grpc::Status status = stub->SetMode(ctx.Call().get(), request, &response);
  if (!status.ok()) return Fail(ctx, status);
  *ctx.out << (ctx.json ? ToJson(response) : absl::StrCat("mode: ", ModeChangeText(response.change()))) << "\n";
  return kExitOk;
}

int CmdHistory(Context& ctx) {
  auto stub = clm::v1::CadenceStatus::NewStub(ctx.channel);
  clm::v1::GetMonitorHistoryRequest request;
  request.set_limit(static_cast<uint32_t>(ctx.IntFlag("limit", 20, 1, 1000)));
  clm::v1::GetMonitorHistoryResponse response;
  grpc::Status status = stub->GetMonitorHistory(ctx.Call().get(), request, &response);
  if (!status.ok()) return Fail(ctx, status);
  if (ctx.json) {
    *ctx.out << ToJson(response) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& d : response.decisions()) {
    rows.push_back({absl::StrCat(d.id()), FormatTimestamp(d.decided_at()), clm::v1::LearningMode_Name(d.mode()),
                    absl::StripPrefix(clm::v1::MonitorAction_Name(d.action()), "MONITOR_ACTION_").data(),
                    d.job_id().empty() ? "-" : d.job_id(), d.reason()});
  }
  if (rows.empty()) {
    *ctx.out << "no monitor decisions yet\n";
  } else {
    *ctx.out << Table({"ID", "DECIDED", "MODE", "ACTION", "JOB", "REASON"}, rows);
  }
  return kExitOk;
}

std::string CountsText(const google::protobuf::Map<std::string, uint64_t>& counts) {
  std::vector<std::pair<std::string, uint64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::vector<std::string> parts;
  for (const auto& [key, n] : sorted) parts.push_back(absl::StrCat(key.empty() ? "(none)" : key, " ", n));
  return parts.empty() ? "-" : absl::StrJoin(parts, ", ");
}

int CmdTradesSummary(Context& ctx) {
  auto stub = clm::v1::TradeIngest::NewStub(ctx.channel);
  clm::v1::GetDatasetSummaryRequest request;
  *request.mutable_filter() = FilterFromFlags(ctx);
  clm::v1::DatasetSummary summary;
  grpc::Status status = stub->GetDatasetSummary(ctx.Call().get(), request, &summary);
  if (!status.ok()) return Fail(ctx, status);
  if (ctx.json) {
    *ctx.out << ToJson(summary) << "\n";
    return kExitOk;
  }
  const uint64_t labelled = summary.wins() + summary.losses();
  *ctx.out << "trades:    " << summary.total() << " (" << summary.wins() << " WIN, " << summary.losses()
           << " LOSS, " << summary.neutrals() << " NEUTRAL)\n";
  *ctx.out << "win rate:  "
           << (labelled == 0 ? "-" : Pct(static_cast<double>(summary.wins()) / static_cast<double>(labelled)))
           << " of labelled trades\n";
  *ctx.out << "closed:    " << FormatTimestamp(summary.first_closed_at()) << " .. "
           << FormatTimestamp(summary.last_closed_at()) << absl::StrFormat(" (%.1f days)", summary.span_days())
           << "\n";
  *ctx.out << "symbols:   " << CountsText(summary.trades_per_symbol()) << "\n";
  *ctx.out << "models:    " << CountsText(summary.trades_per_model()) << "\n";
  return kExitOk;
}

int CmdDeadLetters(Context& ctx) {
  auto stub = clm::v1::TradeIngest::NewStub(ctx.channel);
  clm::v1::ListDeadLettersRequest request;
  request.set_limit(static_cast<uint32_t>(ctx.IntFlag("limit", 20, 1, 1000)));
  clm::v1::ListDeadLettersResponse response;
  grpc::Status status = stub->ListDeadLetters(ctx.Call().get(), request, &response);
  if (!status.ok()) return Fail(ctx, status);
  if (ctx.json) {
    *ctx.out << ToJson(response) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& d : response.entries()) {
    rows.push_back({absl::StrCat(d.id()), FormatTimestamp(d.received_at()), d.trade_id(), d.field(), d.reason()});
  }
  if (rows.empty()) {
    *ctx.out << "no dead letters\n";
  } else {
    *ctx.out << Table({"ID", "RECEIVED", "TRADE_ID", "FIELD", "REASON"}, rows);
  }
  return kExitOk;
}

// Streams `trades` through a TradeStreamer and waits for every ack. `line_of` maps a trade id to where it
// came from, for messages. Gives up when nothing was acknowledged for `stall`.
struct StreamOutcome {
  client::TradeStreamer::Stats stats;
  bool stalled = false;
};

StreamOutcome StreamTrades(const Context& ctx, std::vector<TradeOutcome> trades, size_t batch,
                           const std::function<std::string(const std::string&)>& origin_of) {
  client::TradeStreamer::Options options;
  options.max_batch_trades = batch;
  options.max_buffered_trades = std::max<size_t>(trades.size(), 1);
  options.metadata = client::CallMetadata(ctx.connection);
  std::ostream* err = ctx.err;
  absl::Mutex err_mu;
  options.on_rejected = [err, &err_mu, &origin_of](const clm::v1::RejectedTrade& r, const TradeOutcome&) {
    absl::MutexLock lock(&err_mu);
    *err << origin_of(r.trade_id()) << "trade_id " << r.trade_id() << ": " << r.field() << ": " << r.reason()
         << " (rejected by the server)\n";
  };
  options.on_batch_failed = [err, &err_mu](const absl::Status& status, const std::vector<TradeOutcome>& t) {
    absl::MutexLock lock(&err_mu);
    *err << "error: INVALID_ARGUMENT: a batch of " << t.size() << " trades was refused: " << status.message()
         << "\n";
  };
  client::TradeStreamer streamer(ctx.channel, options);
  for (auto& trade : trades) {
    // The buffer holds every trade, so Enqueue cannot be refused.
    streamer.Enqueue(std::move(trade)).IgnoreError();
  }
  StreamOutcome outcome;
  const absl::Duration stall = std::max(ctx.timeout, absl::Seconds(30));
  uint64_t last_done = 0;
  absl::Time last_progress = absl::Now();
  while (!streamer.Flush(absl::Now() + absl::Seconds(1)).ok()) {
    client::TradeStreamer::Stats s = streamer.stats();
    const uint64_t done = s.accepted + s.duplicates + s.rejected + s.failed;
    if (done != last_done) {
      last_done = done;
      last_progress = absl::Now();
    } else if (absl::Now() - last_progress > stall) {
      outcome.stalled = true;
      break;
    }
  }
  streamer.Close(absl::ZeroDuration()).IgnoreError();
  outcome.stats = streamer.stats();
  return outcome;
}

int CmdTradesImport(Context& ctx) {
  const std::string& path = ctx.operands[0];
  const size_t batch = static_cast<size_t>(ctx.IntFlag("batch", 500, 1, 1000));
  const bool skip_invalid = ctx.Has("skip_invalid") && ctx.Flag("skip_invalid") == "true";
  std::ifstream in(path);
  if (!in) {
    *ctx.err << "error: " << path << ": cannot open\n";
    return kExitBadInput;
  }
  client::LegacyTradeLog log = client::ParseLegacyTradeLog(in);
  if (in.bad()) {
    *ctx.err << "error: " << path << ": read failed\n";
    return kExitBadInput;
  }
  std::unordered_map<std::string, size_t> line_of;
  for (size_t i = 0; i < log.trades.size(); ++i) line_of.emplace(log.trades[i].trade_id(), log.trade_lines[i]);
  std::vector<std::string> errors;
  for (const client::LegacyTradeLog::LineError& e : log.errors) {
    errors.push_back(absl::StrCat(path, ":", e.line, ": ", e.message));
  }
  const size_t lines = log.lines;
  std::vector<TradeOutcome> trades = std::move(log.trades);
  const size_t kMaxShown = 20;
  for (size_t i = 0; i < errors.size() && i < kMaxShown; ++i) *ctx.err << errors[i] << "\n";
  if (errors.size() > kMaxShown) *ctx.err << "... and " << errors.size() - kMaxShown << " more invalid lines\n";
  if (!errors.empty() && !skip_invalid) {
    *ctx.err << "error: " << errors.size() << " of " << lines << " lines in " << path
             << " are invalid; nothing was imported (fix them, or pass --skip_invalid to import the valid lines)\n";
    return kExitBadInput;
  }
  auto origin_of = [&path, &line_of](const std::string& trade_id) {
    auto it = line_of.find(trade_id);
    return it == line_of.end() ? std::string() : absl::StrCat(path, ":", it->second, ": ");
  };
  StreamOutcome outcome = StreamTrades(ctx, std::move(trades), batch, origin_of);
  const auto& s = outcome.stats;
  if (ctx.json) {
    *ctx.out << absl::StrFormat(
        "{\"file\":\"%s\",\"lines\":%d,\"invalid_lines\":%d,\"accepted\":%d,\"duplicates\":%d,\"rejected\":%d,"
        "\"failed\":%d}\n",
        absl::CHexEscape(path), lines, errors.size(), s.accepted, s.duplicates, s.rejected, s.failed);
  } else {
    *ctx.out << "imported " << path << ": " << lines << " lines, " << s.accepted << " accepted, " << s.duplicates
             << " duplicates, " << s.rejected << " rejected";
    if (!errors.empty()) *ctx.out << ", " << errors.size() << " invalid lines skipped";
    if (s.failed > 0) *ctx.out << ", " << s.failed << " in refused batches";
    *ctx.out << "\n";
  }
  if (outcome.stalled) {
    *ctx.err << "error: UNAVAILABLE: import stalled, " << s.buffered << " trades not acknowledged; last error: "
             << s.last_error << " (run the import again: trades already stored count as duplicates)\n";
    return kExitUnreachable;
  }
  if (s.rejected > 0 || s.failed > 0) {
    *ctx.err << "error: " << s.rejected + s.failed
             << " trades were not stored (see above, and `clmctl trades dead-letters`)\n";
    return kExitServerError;
  }
  return kExitOk;
}

// Jobs.

std::string JobStateName(clm::v1::JobState state) { return clm::v1::JobState_Name(state); }

// Watches a job until it ends, drawing a progress bar on stderr. Returns the final job or the call's error.
grpc::Status WaitForJob(const Context& ctx, const std::string& id, clm::v1::Job* job) {
  auto stub = clm::v1::CalibrationJob::NewStub(ctx.channel);
  auto call = ctx.Call(/*with_deadline=*/false);
  clm::v1::WatchJobRequest request;
  request.set_id(id);
  auto reader = stub->Watch(call.get(), request);
  bool drew = false;
  while (reader->Read(job)) {
    *ctx.err << "\r" << id << " " << ProgressBar(job->progress()) << " " << absl::StrFormat("%-9s", JobStateName(job->state()));
    ctx.err->flush();
    drew = true;
  }
  if (drew) *ctx.err << "\n";
  grpc::Status status = reader->Finish();
  if (!status.ok()) return status;
  // Watch updates may leave the result out, and a watch ends early when the server shuts down: read the
  // final job once.
  clm::v1::GetJobRequest get;
  get.set_id(id);
  return stub->Get(ctx.Call().get(), get, job);
}

std::string JobResultLine(const clm::v1::Job& job) {
  const auto& r = job.result();
  const auto& e = r.evaluation();
  std::string line = absl::StrCat(r.trades_used(), " labelled trades");
  if (e.cross_validated()) {
    absl::StrAppend(&line, absl::StrFormat(", out-of-sample Brier improvement %.1f%% (95%% CI %.1f%% .. %.1f%%)",
                                           e.improvement_pct(), e.improvement_ci_low(), e.improvement_ci_high()));
  } else {
    absl::StrAppend(&line, absl::StrFormat(", in-sample Brier improvement %.1f%% (not cross-validated)",
                                           e.in_sample_improvement_pct()));
  }
  absl::StrAppend(&line, ", risk ", r.safety().risk_level().empty() ? "-" : r.safety().risk_level(),
                  r.safety().deployment_ready() ? ", deployment ready" : ", NOT deployment ready");
  return line;
}

// Throws UsageError for a malformed flag.
clm::v1::SubmitJobRequest SubmitRequestFromFlags(const Context& ctx) {
  clm::v1::SubmitJobRequest request;
  const std::string method = absl::AsciiStrToLower(ctx.Flag("method", "isotonic"));
  if (method == "isotonic") {
    request.set_method(clm::v1::ISOTONIC);
  } else if (method == "platt") {
    request.set_method(clm::v1::PLATT);
  } else if (method == "venn_abers" || method == "venn-abers") {
    request.set_method(clm::v1::VENN_ABERS);
  } else {
    throw UsageError(
        absl::StrCat("--method: must be isotonic, platt or venn_abers, got \"", ctx.Flag("method"), "\""));
  }
  *request.mutable_filter() = FilterFromFlags(ctx);
  request.mutable_options()->set_folds(static_cast<int32_t>(ctx.IntFlag("folds", 0, 2, 100)));
  request.mutable_options()->set_bins(static_cast<int32_t>(ctx.IntFlag("bins", 0, 1, 1000)));
  if (ctx.Has("neutral")) {
    const std::string neutral = absl::AsciiStrToLower(ctx.Flag("neutral"));
    if (neutral == "exclude") {
      request.mutable_options()->set_neutral_handling(clm::v1::NEUTRAL_EXCLUDE);
    } else if (neutral == "half") {
      request.mutable_options()->set_neutral_handling(clm::v1::NEUTRAL_AS_HALF);
    } else if (neutral == "loss") {
      request.mutable_options()->set_neutral_handling(clm::v1::NEUTRAL_AS_LOSS);
    } else {
      throw UsageError(absl::StrCat("--neutral: must be exclude, half or loss, got \"", ctx.Flag("neutral"), "\""));
    }
  }
  const char* user = getenv("USER");
  request.set_submitted_by(ctx.Flag("by", user != nullptr ? absl::StrCat(user, " (clmctl)") : "clmctl"));
  request.set_reason(ctx.Flag("reason", "submitted with clmctl"));
  return request;
}

// Submits and, unless no_wait, waits. Prints the job id on `out`. Sets *job to the final (or queued) job.
int SubmitAndMaybeWait(Context& ctx, const clm::v1::SubmitJobRequest& request, bool wait, clm::v1::Job* job) {
  auto stub = clm::v1::CalibrationJob::NewStub(ctx.channel);
  grpc::Status status = stub->Submit(ctx.Call().get(), request, job);
  if (!status.ok()) return Fail(ctx, status);
  if (!wait) {
    *ctx.out << (ctx.json ? ToJson(*job) : job->id()) << "\n";
    return kExitOk;
  }
  const std::string id = job->id();
  status = WaitForJob(ctx, id, job);
  if (!status.ok()) return Fail(ctx, status);
  *ctx.out << (ctx.json ? ToJson(*job) : id) << "\n";
  if (job->state() != clm::v1::SUCCEEDED) {
    *ctx.err << "error: job " << id << " ended " << JobStateName(job->state()) << ": " << job->error() << "\n";
    return kExitServerError;
  }
  *ctx.err << "job " << id << " SUCCEEDED: " << JobResultLine(*job) << "\n";
  return kExitOk;
}

int CmdJobsSubmit(Context& ctx) {
  const clm::v1::SubmitJobRequest request = SubmitRequestFromFlags(ctx);
  clm::v1::Job job;
  return SubmitAndMaybeWait(ctx, request, !(ctx.Has("no_wait") && ctx.Flag("no_wait") == "true"), &job);
}

int CmdJobsList(Context& ctx) {
  auto stub = clm::v1::CalibrationJob::NewStub(ctx.channel);
  clm::v1::ListJobsRequest request;
  if (ctx.Has("state")) {
    clm::v1::JobState state;
    if (!clm::v1::JobState_Parse(absl::AsciiStrToUpper(ctx.Flag("state")), &state) ||
        state == clm::v1::JOB_STATE_UNSPECIFIED) {
      throw UsageError(absl::StrCat("--state: must be queued, running, succeeded, failed or cancelled, got \"",
                                    ctx.Flag("state"), "\""));
    }
    request.set_state(state);
  }
  request.set_page_size(static_cast<uint32_t>(ctx.IntFlag("limit", 20, 1, 200)));
  clm::v1::ListJobsResponse response;
  grpc::Status status = stub->List(ctx.Call().get(), request, &response);
  if (!status.ok()) return Fail(ctx, status);
  if (ctx.json) {
    *ctx.out << ToJson(response) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& j : response.jobs()) {
    rows.push_back({j.id(), JobStateName(j.state()), absl::StrFormat("%.0f%%", j.progress() * 100.0),
                    FormatTimestamp(j.created_at()),
                    j.request().method() == clm::v1::PLATT ? "platt" : "isotonic", absl::StrCat(j.trades_seen()),
                    j.request().submitted_by(), j.error()});
  }
  if (rows.empty()) {
    *ctx.out << "no jobs\n";
  } else {
    *ctx.out << Table({"ID", "STATE", "PROGRESS", "CREATED", "METHOD", "TRADES", "BY", "ERROR"}, rows);
  }
  return kExitOk;
}

int CmdJobsShow(Context& ctx) {
  auto stub = clm::v1::CalibrationJob::NewStub(ctx.channel);
  clm::v1::GetJobRequest request;
  request.set_id(ctx.operands[0]);
  clm::v1::Job job;
  grpc::Status status = stub->Get(ctx.Call().get(), request, &job);
  if (!status.ok()) return Fail(ctx, status);
  if (ctx.json) {
    *ctx.out << ToJson(job) << "\n";
    return kExitOk;
  }
  const auto& req = job.request();
  *ctx.out << "job:        " << job.id() << "\n"
           << "state:      " << JobStateName(job.state()) << absl::StrFormat(" (%.0f%%)", job.progress() * 100.0)
           << "\n"
           << "created:    " << FormatTimestamp(job.created_at()) << "\n"
           << "started:    " << FormatTimestamp(job.started_at()) << "\n"
           << "finished:   " << FormatTimestamp(job.finished_at()) << "\n"
           << "method:     " << (req.method() == clm::v1::PLATT ? "platt" : "isotonic") << "\n"
           << "filter:     symbol=" << (req.filter().symbol().empty() ? "*" : req.filter().symbol())
           << " model=" << (req.filter().model_id().empty() ? "*" : req.filter().model_id()) << "\n"
           << "by:         " << req.submitted_by() << ": " << req.reason() << "\n"
           << "trades:     " << job.trades_seen() << " seen\n";
  if (!job.error().empty()) *ctx.out << "error:      " << job.error() << "\n";
  if (job.state() == clm::v1::SUCCEEDED) {
    *ctx.out << "result:     " << JobResultLine(job) << "\n";
    for (const auto& f : job.result().findings()) *ctx.out << "finding:    " << f.text() << "\n";
    for (const auto& w : job.result().safety().warnings()) *ctx.out << "warning:    " << w << "\n";
    for (const auto& e : job.result().safety().errors()) *ctx.out << "safety:     " << e << "\n";
  }
  return kExitOk;
}

int CmdJobsReport(Context& ctx) {
  auto stub = clm::v1::CalibrationJob::NewStub(ctx.channel);
  clm::v1::GetReportRequest request;
  request.set_id(ctx.operands[0]);
  clm::v1::JobReport report;
  grpc::Status status = stub->GetReport(ctx.Call().get(), request, &report);
  if (!status.ok()) return Fail(ctx, status);
  *ctx.out << (ctx.json ? report.json() : report.markdown());
  if (!absl::EndsWith(ctx.json ? report.json() : report.markdown(), "\n")) *ctx.out << "\n";
  return kExitOk;
}

int CmdJobsCancel(Context& ctx) {
  auto stub = clm::v1::CalibrationJob::NewStub(ctx.channel);
  clm::v1::CancelJobRequest request;
  request.set_id(ctx.operands[0]);
  request.set_reason(ctx.Flag("reason", "cancelled with clmctl"));
  clm::v1::Job job;
  grpc::Status status = stub->Cancel(ctx.Call().get(), request, &job);
  if (!status.ok()) return Fail(ctx, status);
  *ctx.out << (ctx.json ? ToJson(job) : absl::StrCat("job ", job.id(), " ", JobStateName(job.state()))) << "\n";
  return kExitOk;
}

// Deployment.

std::string StageName(clm::v1::DeploymentStage stage) {
  switch (stage) {
    case clm::v1::STAGE_SHADOW:
      return "shadow";
    case clm::v1::STAGE_PRODUCTION:
      return "production";
    case clm::v1::STAGE_RETIRED:
      return "retired";
    default:
      return "-";
  }
}

std::string AuditActionName(clm::v1::AuditEntry::Action action) {
  switch (action) {
    case clm::v1::AuditEntry::APPROVE:
      return "approve";
    case clm::v1::AuditEntry::PROMOTE:
      return "promote";
    case clm::v1::AuditEntry::ROLLBACK:
      return "rollback";
    case clm::v1::AuditEntry::AUTO_ROLLBACK:
      return "auto-rollback";
    default:
      return "-";
  }
}

std::string VersionText(uint64_t version) { return version == 0 ? "identity" : absl::StrCat("v", version); }

// --by and --reason are required by every change: the audit log names who and why. With a token the server
// records the token's principal instead, so --by may be left out.
void RequireByAndReason(const Context& ctx) {
  if (ctx.Flag("by").empty() && ctx.connection.token.empty()) {
    throw UsageError("--by NAME is required: who makes the change (or authenticate with a token)");
  }
  if (ctx.Flag("reason").empty()) throw UsageError("--reason TEXT is required: why");
}

uint64_t ParseVersion(const std::string& what, const std::string& text) {
  uint64_t version = 0;
  if (!absl::SimpleAtoi(absl::StripPrefix(text, "v"), &version) || version == 0) {
    throw UsageError(absl::StrCat(what, ": must be a version number (1, 2, ...), got \"", text, "\""));
  }
  return version;
}

std::string MapText(const clm::v1::CalibrationMap& map) {
  const std::string guard =
      map.guard_x_size() > 0 ? absl::StrFormat(", %.0f%% bounds on %d knots", map.interval_level() * 100.0,
                                               map.guard_x_size())
                             : "";
  if (map.method() == clm::v1::PLATT) {
    return absl::StrFormat("platt a=%.4g b=%.4g%s", map.platt_a(), map.platt_b(), guard);
  }
  if (map.method() == clm::v1::VENN_ABERS) {
    return absl::StrCat("venn-abers, ", map.x_thresholds_size(), " calibration confidences");
  }
  return absl::StrCat("isotonic, ", map.x_thresholds_size(), " points", guard);
}

void PrintActive(const Context& ctx, const clm::v1::ActiveCalibration& active) {
  std::ostream& out = *ctx.out;
  out << "production: "
      << (active.production_version() == 0
              ? std::string("none (engines use the raw confidence)")
              : absl::StrCat(VersionText(active.production_version()), " (", MapText(active.production_map()),
                             ", ", active.symbol_maps_size(), " symbol maps, ", active.model_maps_size(),
                             " model maps)"))
      << "\n";
  out << "shadow:     "
      << (active.shadow_version() == 0
              ? std::string("none")
              : absl::StrCat(VersionText(active.shadow_version()), " (", MapText(active.shadow_map()), ")"))
      << "\n";
  out << "sequence:   " << active.sequence() << "\n";
  out << "changed:    " << FormatTimestamp(active.changed_at()) << "\n";
}

int CmdApprove(Context& ctx) {
  const std::string stage_text = absl::AsciiStrToLower(ctx.Flag("stage"));
  clm::v1::ApproveRequest request;
  if (stage_text == "shadow") {
    request.set_stage(clm::v1::STAGE_SHADOW);
  } else if (stage_text == "production") {
    request.set_stage(clm::v1::STAGE_PRODUCTION);
  } else {
    throw UsageError(absl::StrCat("--stage: must be shadow or production, got \"", ctx.Flag("stage"), "\""));
  }
  RequireByAndReason(ctx);
  request.set_job_id(ctx.operands[0]);
  request.set_approver(ctx.Flag("by"));
  request.set_reason(ctx.Flag("reason"));
  request.set_skip_shadow(ctx.Has("skip_shadow") && ctx.Flag("skip_shadow") == "true");
  auto stub = clm::v1::Deployment::NewStub(ctx.channel);
  clm::v1::DeploymentVersion version;
  grpc::Status status = stub->Approve(ctx.Call().get(), request, &version);
  if (!status.ok()) return Fail(ctx, status);
  *ctx.out << (ctx.json ? ToJson(version) : absl::StrCat(version.version())) << "\n";
  *ctx.err << "job " << version.job_id() << " approved as " << VersionText(version.version()) << " into "
           << StageName(version.stage()) << "\n";
  return kExitOk;
}

int CmdPromote(Context& ctx) {
  RequireByAndReason(ctx);
  clm::v1::PromoteRequest request;
  request.set_version(ParseVersion("VERSION", ctx.operands[0]));
  request.set_approver(ctx.Flag("by"));
  request.set_reason(ctx.Flag("reason"));
  auto stub = clm::v1::Deployment::NewStub(ctx.channel);
  clm::v1::DeploymentVersion version;
  grpc::Status status = stub->Promote(ctx.Call().get(), request, &version);
  if (!status.ok()) return Fail(ctx, status);
  *ctx.out << (ctx.json ? ToJson(version) : absl::StrCat(version.version())) << "\n";
  *ctx.err << VersionText(version.version()) << " is now " << StageName(version.stage()) << "\n";
  return kExitOk;
}

int CmdRollback(Context& ctx) {
  const bool identity = ctx.Has("identity") && ctx.Flag("identity") == "true";
  if (identity && ctx.Has("to")) throw UsageError("--to VERSION and --identity exclude each other");
  RequireByAndReason(ctx);
  clm::v1::RollbackRequest request;
  request.set_approver(ctx.Flag("by"));
  request.set_reason(ctx.Flag("reason"));
  if (identity) {
    request.set_to_identity(true);
  } else if (ctx.Has("to")) {
    request.set_to_version(ParseVersion("--to", ctx.Flag("to")));
  }
  auto stub = clm::v1::Deployment::NewStub(ctx.channel);
  clm::v1::ActiveCalibration active;
  grpc::Status status = stub->Rollback(ctx.Call().get(), request, &active);
  if (!status.ok()) return Fail(ctx, status);
  *ctx.out << (ctx.json ? ToJson(active) : absl::StrCat(active.production_version())) << "\n";
  *ctx.err << "production is now "
           << (active.production_version() == 0 ? std::string("identity (raw confidences)")
                                                : VersionText(active.production_version()))
           << "\n";
  return kExitOk;
}

int CmdDeployments(Context& ctx) {
  auto stub = clm::v1::Deployment::NewStub(ctx.channel);
  clm::v1::ListDeploymentsResponse response;
  grpc::Status status = stub->List(ctx.Call().get(), clm::v1::ListDeploymentsRequest(), &response);
  if (!status.ok()) return Fail(ctx, status);
  if (ctx.json) {
    *ctx.out << ToJson(response) << "\n";
    return kExitOk;
  }
  auto mse = [](uint64_t trades, double value) { return trades == 0 ? std::string("-") : absl::StrFormat("%.4f", value); };
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : response.versions()) {
    const auto& live = v.live();
    rows.push_back({VersionText(v.version()), StageName(v.stage()), v.job_id(),
                    v.approved_by().empty() ? "-" : v.approved_by(), FormatTimestamp(v.approved_at()),
                    absl::StrCat(live.trades()), mse(live.trades(), live.mse_raw()),
                    mse(live.trades(), live.mse_production()), mse(live.shadow_trades(), live.mse_shadow())});
  }
  if (rows.empty()) {
    *ctx.out << "no deployments yet (approve a job: clmctl approve JOB --stage shadow --by NAME --reason TEXT)\n";
  } else {
    *ctx.out << Table({"VERSION", "STAGE", "JOB", "APPROVED_BY", "APPROVED_AT", "LIVE_TRADES", "MSE_RAW",
                       "MSE_PRODUCTION", "MSE_SHADOW"},
                      rows);
  }
  return kExitOk;
}

int CmdAudit(Context& ctx) {
  auto stub = clm::v1::Deployment::NewStub(ctx.channel);
  clm::v1::GetAuditRequest request;
  request.set_limit(static_cast<uint32_t>(ctx.IntFlag("limit", 20, 1, 1000)));
  clm::v1::GetAuditResponse response;
  grpc::Status status = stub->GetAudit(ctx.Call().get(), request, &response);
  if (!status.ok()) return Fail(ctx, status);
  if (ctx.json) {
    *ctx.out << ToJson(response) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : response.entries()) {
    rows.push_back({absl::StrCat(e.id()), FormatTimestamp(e.at()), AuditActionName(e.action()), e.actor(),
                    e.ok() ? "ok" : "refused", e.rule().empty() ? "-" : e.rule(), VersionText(e.from_version()),
                    VersionText(e.to_version()), StageName(e.stage()), e.job_id().empty() ? "-" : e.job_id(),
                    e.reason()});
  }
  if (rows.empty()) {
    *ctx.out << "no deployment changes yet\n";
  } else {
    *ctx.out << Table({"ID", "AT", "ACTION", "ACTOR", "RESULT", "RULE", "FROM", "TO", "STAGE", "JOB", "REASON"},
                      rows);
  }
  return kExitOk;
}

int CmdActive(Context& ctx) {
  auto stub = clm::v1::Deployment::NewStub(ctx.channel);
  clm::v1::ActiveCalibration active;
  grpc::Status status = stub->GetActive(ctx.Call().get(), clm::v1::GetActiveRequest(), &active);
  if (!status.ok()) return Fail(ctx, status);
  if (ctx.json) {
    *ctx.out << ToJson(active) << "\n";
  } else {
    PrintActive(ctx, active);
  }
  return kExitOk;
}

// Approves a deployment-ready demo job into shadow and prints the active calibration; otherwise says why
// not. A rule's refusal (e.g. the cadence level is not authorized) is part of the walk-through, not a failure.
int DemoApproveIntoShadow(Context& ctx, const clm::v1::Job& job, const std::string& run_id) {
  std::ostream& out = *ctx.out;
  const clm::v1::SafetyValidation& safety = job.result().safety();
  if (!safety.deployment_ready()) {
    out << "not approved: job " << job.id() << " is not deployment ready: "
        << (safety.errors().empty() ? std::string("no safety errors reported") : absl::StrJoin(safety.errors(), "; "))
        << "\n";
    return kExitOk;
  }
  auto deployment = clm::v1::Deployment::NewStub(ctx.channel);
  clm::v1::ApproveRequest approve;
  approve.set_job_id(job.id());
  approve.set_stage(clm::v1::STAGE_SHADOW);
  approve.set_approver("demo");
  approve.set_reason(absl::StrCat("clmctl demo run ", run_id, ": scored beside production, engines unaffected"));
  clm::v1::DeploymentVersion version;
  grpc::Status status = deployment->Approve(ctx.Call().get(), approve, &version);
  if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
    out << "not approved: " << status.error_message() << "\n";
    return kExitOk;
  }
  if (!status.ok()) return Fail(ctx, status);
  out << "approved job " << job.id() << " as " << VersionText(version.version()) << " into shadow\n\n"
      << "the active calibration:\n";
  clm::v1::ActiveCalibration active;
  status = deployment->GetActive(ctx.Call().get(), clm::v1::GetActiveRequest(), &active);
  if (!status.ok()) return Fail(ctx, status);
  PrintActive(ctx, active);
  return kExitOk;
}

// The whole loop on synthetic data, for newcomers.
int CmdDemo(Context& ctx) {
  const int count = static_cast<int>(ctx.IntFlag("trades", 1500, 100, 100000));
  const double days = static_cast<double>(ctx.IntFlag("days", 10, 4, 365));
  std::random_device device;
  const uint64_t seed = (static_cast<uint64_t>(device()) << 32) ^ device();
  const std::string run_id = absl::StrFormat("%08x", static_cast<uint32_t>(seed));
  std::ostream& out = *ctx.out;
  out << "== 1. The engine streams " << count << " closed trades (run " << run_id << ", " << days
      << " days, 3 symbols, 3 models) ==\n";
  std::vector<TradeOutcome> trades = MakeDemoTrades(run_id, count, days, seed, absl::Now());
  const absl::Time start = absl::Now();
  StreamOutcome streamed = StreamTrades(ctx, std::move(trades), 250, [](const std::string&) { return ""; });
  const auto& s = streamed.stats;
  out << "streamed in " << absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1))) << ": "
      << s.accepted << " accepted, " << s.duplicates << " duplicates, " << s.rejected << " rejected, over "
      << s.batches_sent << " batches on one stream\n\n";
  if (streamed.stalled) {
    *ctx.err << "error: UNAVAILABLE: streaming stalled: " << s.last_error << "\n";
    return kExitUnreachable;
  }

  out << "== 2. CLM's cadence report: may it learn? ==\n";
  // The monitor re-evaluates once an ingest burst settles (about a second): wait until its report covers
  // every stored trade, then show it.
  {
    auto ingest = clm::v1::TradeIngest::NewStub(ctx.channel);
    auto cadence = clm::v1::CadenceStatus::NewStub(ctx.channel);
    clm::v1::DatasetSummary summary;
    grpc::Status status = ingest->GetDatasetSummary(ctx.Call().get(), clm::v1::GetDatasetSummaryRequest(), &summary);
    if (!status.ok()) return Fail(ctx, status);
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    for (;;) {
      clm::v1::CadenceReport report;
      status = cadence->GetStatus(ctx.Call().get(), clm::v1::GetStatusRequest(), &report);
      if (!status.ok()) return Fail(ctx, status);
      if (report.data().total_trades() >= summary.total() || absl::Now() > give_up) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
  }
  if (int rc = CmdStatus(ctx); rc != kExitOk) return rc;
  out << "\n== 3. A calibration job fits and honestly evaluates a map ==\n";
  clm::v1::SubmitJobRequest request;
  request.set_method(clm::v1::ISOTONIC);
  request.set_submitted_by("clmctl demo");
  request.set_reason(absl::StrCat("demo run ", run_id));
  clm::v1::Job job;
  const bool json = ctx.json;
  ctx.json = false;
  int rc = SubmitAndMaybeWait(ctx, request, /*wait=*/true, &job);
  ctx.json = json;
  if (rc != kExitOk) return rc;
  out << "\n== 4. The report an operator reviews ==\n";
  ctx.operands = {job.id()};
  if (rc = CmdJobsReport(ctx); rc != kExitOk) return rc;
  out << "\n== 5. Deployment: approve the map into shadow ==\n";
  if (rc = DemoApproveIntoShadow(ctx, job, run_id); rc != kExitOk) return rc;
  out << "\n== Next ==\n"
      << "The engine applies the production map locally with clm::client::CalibrationCache following\n"
      << "clm::client::WatchActiveSource (see client/README.md). Shadow maps are scored beside production only.\n"
      << "Try: clmctl deployments    clmctl promote VERSION --by NAME --reason TEXT    clmctl audit\n";
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------------------
// Credentials for the server's --auth_tokens file.

int CmdAuthNewToken(Context& ctx) {
  const std::string& principal = ctx.operands[0];
  if (ctx.Flag("roles").empty()) throw UsageError("--roles is required: engine, operator and/or viewer, comma-separated");
  for (absl::string_view role : absl::StrSplit(ctx.Flag("roles"), ',')) {
    if (!auth::ParseRole(role).has_value()) {
      throw UsageError(absl::StrCat("--roles: \"", role, "\" is not engine, operator or viewer"));
    }
  }
  if (principal.find_first_of(" \t#") != std::string::npos) {
    throw UsageError("PRINCIPAL: must not contain spaces, tabs or '#'");
  }
  absl::StatusOr<std::string> token = auth::NewToken();
  if (!token.ok()) {
    *ctx.err << "error: " << token.status().message() << "\n";
    return kExitServerError;
  }
  const std::string line = absl::StrCat("token ", auth::Sha256Hex(*token), " ", principal, " ", ctx.Flag("roles"));
  if (ctx.json) {
    *ctx.out << "{\"token\": \"" << *token << "\", \"line\": \"" << line << "\"}\n";
  } else {
    *ctx.out << "token: " << *token << "\n"
             << "line:  " << line << "\n";
    *ctx.err << "Give the token to " << principal << " (it is shown only now); append the line to the server's "
             << "--auth_tokens file, then send the server SIGHUP.\n";
  }
  return kExitOk;
}

int CmdAuthHashToken(Context& ctx) {
  std::string token;
  if (!std::getline(*ctx.in, token) || absl::StripAsciiWhitespace(token).empty()) {
    throw UsageError("give the token on standard input (one line), e.g. printf %s \"$TOKEN\" | clmctl auth hash-token");
  }
  *ctx.out << auth::Sha256Hex(absl::StripAsciiWhitespace(token)) << "\n";
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------------------
// The command table and help.

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      {"status", "[--symbol S] [--model M]", "the cadence report: may CLM learn, why (not), what next",
       {"symbol", "model"}, 0, 0, true, CmdStatus},
      {"watch", "[--count N]", "print the cadence report now and on every change (N reports, 0: forever)",
       {"count"}, 0, 0, true, CmdWatch},
      {"mode get", "", "the learning mode and its last change", {}, 0, 0, true, CmdModeGet},
      {"mode set", "MODE --by NAME --reason TEXT",
       "set the learning mode: logging_only, auto_calibrate or auto_shadow", {"by", "reason"}, 1, 1, true,
       CmdModeSet},
      {"history", "[--limit N]", "the cadence monitor's decisions, newest first", {"limit"}, 0, 0, true,
       CmdHistory},
      {"trades summary", "[--symbol S] [--model M] [--from T] [--to T]",
       "counts by outcome, close-time range, trades per symbol and model", {"symbol", "model", "from", "to"}, 0, 0,
       true, CmdTradesSummary},
      {"trades import", "FILE [--batch N] [--skip_invalid]",
       "import a JSON Lines trade log (the engine's clm_trades.jsonl); safe to repeat",
       {"batch", "skip_invalid"}, 1, 1, true, CmdTradesImport},
      {"trades dead-letters", "[--limit N]", "trades the server rejected, newest first", {"limit"}, 0, 0, true,
       CmdDeadLetters},
      {"jobs submit",
       "[--method isotonic|platt|venn_abers] [--symbol S] [--model M] [--from T] [--to T] [--folds N] [--bins N] "
       "[--neutral exclude|half|loss] [--by NAME] [--reason TEXT] [--no-wait]",
       "start a calibration job; waits with a progress bar on stderr, prints the job id",
       {"method", "symbol", "model", "from", "to", "folds", "bins", "neutral", "by", "reason", "no_wait"}, 0, 0,
       true, CmdJobsSubmit},
      {"jobs list", "[--state STATE] [--limit N]", "jobs, newest first", {"state", "limit"}, 0, 0, true,
       CmdJobsList},
      {"jobs show", "ID", "one job: state, request and result summary", {}, 1, 1, true, CmdJobsShow},
      {"jobs report", "ID", "the Markdown report of a succeeded job (--json: the result as JSON)", {}, 1, 1, true,
       CmdJobsReport},
      {"jobs cancel", "ID [--reason TEXT]", "cancel a queued or running job", {"reason"}, 1, 1, true,
       CmdJobsCancel},
      {"demo", "[--trades N] [--days D]",
       "stream a synthetic data set, show the cadence report, run a calibration job, print its report and, "
       "when it is deployment ready, approve it into shadow",
       {"trades", "days"}, 0, 0, true, CmdDemo},
      {"approve", "JOB --stage shadow|production [--skip_shadow] --by NAME --reason TEXT",
       "deploy a succeeded, deployment-ready job as a new version; prints the version. Production needs the "
       "job's shadow evidence (approve into shadow, then promote), or --skip_shadow: an audited override",
       {"stage", "skip_shadow", "by", "reason"}, 1, 1, true, CmdApprove},
      {"promote", "VERSION --by NAME --reason TEXT", "move the shadow version to production; prints the version",
       {"by", "reason"}, 1, 1, true, CmdPromote},
      {"rollback", "[--to VERSION | --identity] --by NAME --reason TEXT",
       "production back to the previous (or named, or no) calibration; prints the production version (0: none)",
       {"to", "identity", "by", "reason"}, 0, 0, true, CmdRollback},
      {"deployments", "", "every deployed version, newest first: stage, approval, live trades and MSE", {}, 0, 0,
       true, CmdDeployments},
      {"audit", "[--limit N]", "every deployment change and refused attempt, newest first", {"limit"}, 0, 0, true,
       CmdAudit},
      {"active", "", "the active calibration: production and shadow versions", {}, 0, 0, true, CmdActive},
      {"auth new-token", "PRINCIPAL --roles engine|operator|viewer[,...]",
       "make a random token; prints it and the line for the server's --auth_tokens file (SHA-256 only)",
       {"roles"}, 1, 1, false, CmdAuthNewToken},
      {"auth hash-token", "< TOKEN", "the SHA-256 of a token read from standard input, as the credentials file "
       "stores it", {}, 0, 0, false, CmdAuthHashToken},
  };
  return *commands;
}

bool KnownFlag(const std::string& name) {
  const auto& globals = GlobalFlags();
  if (std::find(globals.begin(), globals.end(), name) != globals.end()) return true;
  for (const Command& c : Commands()) {
    if (std::find(c.flags.begin(), c.flags.end(), name) != c.flags.end()) return true;
  }
  return false;
}

std::string GlobalHelp() {
  std::string out =
      "clmctl: operate a CLM server (the Continuous Learning Module) over gRPC.\n\n"
      "usage: clmctl [global flags] COMMAND [arguments] [flags]\n\ncommands:\n";
  for (const Command& c : Commands()) absl::StrAppend(&out, absl::StrFormat("  %-20s %s\n", c.name, c.summary));
  absl::StrAppend(&out,
                  "\nglobal flags:\n"
                  "  --server HOST:PORT   the server (default 127.0.0.1:8003)\n"
                  "  --timeout SECONDS    deadline of each call and of connecting (default 10)\n"
                  "  --json               machine-readable output (one JSON document per result)\n"
                  "  --tls                use TLS (implied by --tls_ca/--tls_cert)\n"
                  "  --tls_ca FILE        PEM roots to verify the server\n"
                  "  --tls_cert FILE      PEM client certificate (mutual TLS), with --tls_key FILE\n"
                  "  --token TOKEN        send \"authorization: Bearer TOKEN\" with every call (visible to\n"
                  "                       other users in ps: prefer --token_file or the CLM_TOKEN variable)\n"
                  "  --token_file FILE    read the token from FILE (first line)\n"
                  "\nexit codes:\n"
                  "  0  ok\n"
                  "  1  the server answered with an error (printed as \"error: CODE: message\"), refused trades,\n"
                  "     or a job did not succeed\n"
                  "  2  usage error: unknown command or flag, missing or malformed argument\n"
                  "  3  cannot reach the server\n"
                  "  4  invalid input file (trades import): every bad line is printed as FILE:LINE: field: reason\n"
                  "\nRun 'clmctl COMMAND --help' for a command's flags.\n");
  return out;
}

std::string CommandHelp(const Command& c) {
  return absl::StrCat("usage: clmctl ", c.name, c.synopsis.empty() ? "" : " ", c.synopsis, "\n\n", c.summary,
                      "\n\nGlobal flags (--server, --timeout, --json, --tls*, --token) apply too; "
                      "see 'clmctl --help' for them and the exit codes.\n");
}

const Command* FindCommand(const std::vector<std::string>& words, size_t* consumed) {
  for (size_t n : {size_t{2}, size_t{1}}) {
    if (words.size() < n) continue;
    std::string name = absl::StrJoin(words.begin(), words.begin() + static_cast<std::ptrdiff_t>(n), " ");
    for (const Command& c : Commands()) {
      if (c.name == name) {
        *consumed = n;
        return &c;
      }
    }
  }
  return nullptr;
}

int RunParsed(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err) {
  Context ctx;
  ctx.out = &out;
  ctx.err = &err;
  ctx.in = &in;
  ctx.args = ParseArgs(args);
  const bool help = ctx.Has("help");
  if (ctx.args.positional.empty() || (ctx.args.positional.size() == 1 && ctx.args.positional[0] == "help")) {
    if (help || !ctx.args.positional.empty()) {
      out << GlobalHelp();
      return kExitOk;
    }
    err << "error: missing command\n\n" << GlobalHelp();
    return kExitUsage;
  }
  size_t consumed = 0;
  const Command* command = FindCommand(ctx.args.positional, &consumed);
  if (command == nullptr) {
    std::string words = ctx.args.positional[0];
    if (ctx.args.positional.size() > 1) absl::StrAppend(&words, " ", ctx.args.positional[1]);
    throw UsageError(absl::StrCat("unknown command \"", words, "\" (run 'clmctl --help')"));
  }
  if (help) {
    out << CommandHelp(*command);
    return kExitOk;
  }
  for (const auto& [name, value] : ctx.args.flags) {
    const auto& globals = GlobalFlags();
    if (std::find(globals.begin(), globals.end(), name) == globals.end() &&
        std::find(command->flags.begin(), command->flags.end(), name) == command->flags.end()) {
      throw UsageError(absl::StrCat("unknown flag --", name, " for \"", command->name, "\"\n", CommandHelp(*command)));
    }
  }
  ctx.operands.assign(ctx.args.positional.begin() + static_cast<std::ptrdiff_t>(consumed), ctx.args.positional.end());
  if (ctx.operands.size() < command->min_operands || ctx.operands.size() > command->max_operands) {
    throw UsageError(absl::StrCat(ctx.operands.size() < command->min_operands ? "missing argument"
                                                                             : "too many arguments",
                                  " for \"", command->name, "\"\n", CommandHelp(*command)));
  }

  ctx.json = ctx.Has("json") && ctx.Flag("json") == "true";
  ctx.timeout = absl::Seconds(ctx.IntFlag("timeout", 10, 1, 86400));
  ctx.connection.target = ctx.Flag("server", "127.0.0.1:8003");
  ctx.connection.tls = ctx.Has("tls") && ctx.Flag("tls") == "true";
  ctx.connection.tls_ca_file = ctx.Flag("tls_ca");
  ctx.connection.tls_cert_file = ctx.Flag("tls_cert");
  ctx.connection.tls_key_file = ctx.Flag("tls_key");
  ctx.connection.token = ctx.Flag("token");
  if (ctx.connection.token.empty() && ctx.Has("token_file")) {
    std::ifstream in(ctx.Flag("token_file"));
    std::string line;
    if (!in || !std::getline(in, line) || absl::StripAsciiWhitespace(line).empty()) {
      throw UsageError(absl::StrCat("--token_file ", ctx.Flag("token_file"), ": cannot read a token from it"));
    }
    ctx.connection.token = std::string(absl::StripAsciiWhitespace(line));
  }
  if (ctx.connection.token.empty()) {
    if (const char* env = getenv("CLM_TOKEN"); env != nullptr) ctx.connection.token = std::string(absl::StripAsciiWhitespace(env));
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      client::MakeChannel(ctx.connection, client::EngineChannelArguments(absl::Seconds(2)));
  if (!channel.ok()) throw UsageError(std::string(channel.status().message()));
  ctx.channel = *std::move(channel);
  if (command->needs_server && !ctx.channel->WaitForConnected(absl::ToChronoTime(absl::Now() + ctx.timeout))) {
    err << "error: cannot reach the server at " << ctx.connection.target << " within "
        << absl::FormatDuration(ctx.timeout) << "\n";
    return kExitUnreachable;
  }
  return command->run(ctx);
}

}  // namespace

std::vector<TradeOutcome> MakeDemoTrades(const std::string& run_id, int count, double days, uint64_t seed,
                                         absl::Time now) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<double> noise(0.0, 0.05);
  const std::vector<std::string> symbols = {"BTCUSDT", "ETHUSDT", "SOLUSDT"};
  const std::vector<double> symbol_weights = {0.5, 0.3, 0.2};
  std::vector<TradeOutcome> trades;
  trades.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    TradeOutcome t;
    t.set_trade_id(absl::StrCat("demo-", run_id, "-", i));
    const double pick = unit(rng);
    t.set_symbol(pick < symbol_weights[0] ? symbols[0]
                                           : pick < symbol_weights[0] + symbol_weights[1] ? symbols[1] : symbols[2]);
    t.set_model_id("ensemble_v3");
    // Confidences mostly in 0.45-0.95, the engine's usual range.
    const double confidence = std::clamp(0.45 + 0.5 * unit(rng), 0.0, 1.0);
    t.set_confidence(std::round(confidence * 1000.0) / 1000.0);
    // Over-confident in 0.50-0.70 (wins ~38%), accurate above 0.75, in between a blend.
    double win_probability = confidence;
    if (confidence >= 0.50 && confidence < 0.70) {
      win_probability = 0.38;
    } else if (confidence >= 0.70 && confidence < 0.75) {
      win_probability = 0.38 + (confidence - 0.70) / 0.05 * (0.75 - 0.38);
    }
    if (unit(rng) < 0.06) {
      t.set_outcome(TradeOutcome::NEUTRAL);
      t.set_pnl(std::round(noise(rng) * 100.0) / 100.0);
    } else if (unit(rng) < win_probability) {
      t.set_outcome(TradeOutcome::WIN);
      t.set_pnl(std::round((20.0 + 80.0 * unit(rng)) * 100.0) / 100.0);
    } else {
      t.set_outcome(TradeOutcome::LOSS);
      t.set_pnl(-std::round((15.0 + 60.0 * unit(rng)) * 100.0) / 100.0);
    }
    t.set_side(unit(rng) < 0.55 ? TradeOutcome::LONG : TradeOutcome::SHORT);
    const absl::Time closed = now - absl::Seconds(60 + unit(rng) * days * 86400.0);
    *t.mutable_closed_at() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(closed));
    *t.mutable_opened_at() =
        TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(closed - absl::Minutes(5 + 240 * unit(rng))));
    // Members: xgboost close to the ensemble, lightgbm noisier, lstm barely informative.
    auto member = [&](double spread, double pull) {
      const double c = (1.0 - pull) * confidence + pull * 0.5 + spread * noise(rng) / 0.05;
      return std::round(std::clamp(c, 0.01, 0.99) * 1000.0) / 1000.0;
    };
    (*t.mutable_model_confidences())["xgboost"] = member(0.03, 0.0);
    (*t.mutable_model_confidences())["lightgbm"] = member(0.06, 0.1);
    (*t.mutable_model_confidences())["lstm"] = member(0.10, 0.6);
    trades.push_back(std::move(t));
  }
  return trades;
}

int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return Run(args, std::cin, out, err);
}

int Run(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err) {
  try {
    return RunParsed(args, in, out, err);
  } catch (const UsageError& e) {
    err << "error: " << e.what() << "\n";
    return kExitUsage;
  }
}

}  // namespace clm::clmctl
