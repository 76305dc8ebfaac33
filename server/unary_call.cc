#include "server/unary_call.h"

#include <chrono>
#include <utility>

#include "absl/time/clock.h"
#include "server/grpc_status.h"

namespace clm::server {

std::optional<auth::Principal> Admit(const Authenticator& auth, grpc::CallbackServerContext* context,
                                     grpc::ServerUnaryReactor* reactor, MethodMetrics& metrics) {
  absl::StatusOr<auth::Principal> caller = auth.Check(*context, metrics.method());
  if (caller.ok()) return *std::move(caller);
  FinishUnary(reactor, metrics, absl::Now(), ToGrpcStatus(caller.status()));
  return std::nullopt;
}

void FinishUnary(grpc::ServerUnaryReactor* reactor, MethodMetrics& metrics, absl::Time start,
                 const grpc::Status& status) {
  metrics.Record(status, absl::Now() - start);
  reactor->Finish(status);
}

absl::Status CallEnded(const grpc::CallbackServerContext& context) {
  // IsCancelled is also true once gRPC has cancelled a call for its deadline: check the deadline first so
  // the reason is the right one.
  if (std::chrono::system_clock::now() >= context.deadline()) {
    return absl::DeadlineExceededError("the caller's deadline passed before the answer was ready");
  }
  if (context.IsCancelled()) return absl::CancelledError("the caller cancelled the call");
  return absl::OkStatus();
}

std::function<bool()> StopWhenCallEnds(const grpc::CallbackServerContext* context) {
  return [context] { return !CallEnded(*context).ok(); };
}

void FinishOnPool(ThreadPool* pool, grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
                  MethodMetrics& metrics, std::function<absl::Status()> work) {
  const absl::Time start = absl::Now();
  absl::Status scheduled = pool->Schedule([context, reactor, &metrics, start, work = std::move(work)] {
    absl::Status status = CallEnded(*context);
    if (status.ok()) {
      status = work();
      if (!status.ok()) {
        // An error caused by the caller leaving (an interrupted read) is reported as that.
        if (absl::Status ended = CallEnded(*context); !ended.ok()) status = ended;
      }
    }
    FinishUnary(reactor, metrics, start, ToGrpcStatus(status));
  });
  if (!scheduled.ok()) FinishUnary(reactor, metrics, start, ToGrpcStatus(scheduled));
}

}  // namespace clm::server
