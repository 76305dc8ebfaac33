#ifndef CLM_SERVER_UNARY_CALL_H_
#define CLM_SERVER_UNARY_CALL_H_

#include <functional>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "lib/common/thread_pool.h"
#include "server/auth.h"
#include "server/metrics.h"

namespace clm::server {

// How every handler begins: authentication and authorization of the caller for `metrics.method()`. On
// refusal (UNAUTHENTICATED, PERMISSION_DENIED) the call is finished and recorded, and nullopt returned: the
// handler returns the reactor at once, having changed nothing.
std::optional<auth::Principal> Admit(const Authenticator& auth, grpc::CallbackServerContext* context,
                                     grpc::ServerUnaryReactor* reactor, MethodMetrics& metrics);

// The two ways a unary handler ends, shared by every service so each records its metrics the same way.

// Finishes the call with `status` and records it with the latency since `start`.
void FinishUnary(grpc::ServerUnaryReactor* reactor, MethodMetrics& metrics, absl::Time start,
                 const grpc::Status& status);

// Why the call need not be answered any more: DEADLINE_EXCEEDED once the caller's deadline has passed,
// CANCELLED once the caller went away, else OK.
absl::Status CallEnded(const grpc::CallbackServerContext& context);

// A predicate for long work (store::DatasetQuery::stop): true once CallEnded is not OK. Valid until the call
// is finished.
std::function<bool()> StopWhenCallEnds(const grpc::CallbackServerContext* context);

// Runs `work` (which may block on storage) on `pool`, off gRPC's threads, and finishes the call with its
// status. A full or stopped pool finishes the call at once with RESOURCE_EXHAUSTED or UNAVAILABLE. A call
// whose caller's deadline passed, or who cancelled, while it waited in the queue is finished without running
// `work` (DEADLINE_EXCEEDED or CANCELLED); work that fails after the call ended reports that, not its own error.
void FinishOnPool(ThreadPool* pool, grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
                  MethodMetrics& metrics, std::function<absl::Status()> work);

// The common case of FinishOnPool: `work` computes the response, which is stored in `*response` on success.
template <typename Response, typename Work>
void AnswerOnPool(ThreadPool* pool, grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
                  MethodMetrics& metrics, Response* response, Work work) {
  FinishOnPool(pool, context, reactor, metrics, [response, work = std::move(work)]() -> absl::Status {
    absl::StatusOr<Response> answer = work();
    if (!answer.ok()) return answer.status();
    *response = std::move(*answer);
    return absl::OkStatus();
  });
}

}  // namespace clm::server

#endif  // CLM_SERVER_UNARY_CALL_H_
