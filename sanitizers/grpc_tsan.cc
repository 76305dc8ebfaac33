// ThreadSanitizer and gRPC's callback API (see absl_tsan.cc for the mechanism). gRPC orders the events
// below inside the uninstrumented libgrpc and libgrpc++ (completion queue, combiner, atomic counts); these
// definitions tell TSan about the two orders that gRPC guarantees to the application.
//
// 1. An operation before its completion. A reaction (OnReadDone, OnWriteDone, a unary reactor's OnDone...)
//    runs on a gRPC thread after the operation the application started (StartRead, StartWrite, StartCall,
//    Finish) completes, so reactor state written before StartWrite may be read in OnWriteDone without a
//    lock, and the grpcpp templates finalise the operation (deserialise into the message StartRead was
//    given, release what StartWrite sent) on that thread. Every such operation is a batch on a grpc_call,
//    started with grpc_call_start_batch(call, ops, nops, tag) and completed with grpc_cq_end_op(cq, tag,
//    ...) on a gRPC thread, which then runs the tag on the same thread or hands it over through a locked
//    queue. Releasing the tag at the start and acquiring it at the end is that order. Then the grpcpp
//    templates drop the call with grpc_call_unref(call); releasing the call at the start and acquiring it
//    there covers completions that do not pass through a completion queue.
// 2. Every call before Server::Wait returns. Wait returns after every call's OnDone has returned, so the
//    services' state (subscriber lists a watch's OnDone edits) may be destroyed after it without a lock.
//    The grpcpp templates unref a call right after its OnDone; each unref releases one address and
//    Server::Wait acquires it.
// Neither adds an order between two reactions, or between a reaction and what the application does after
// starting an operation: races there are still reported.
#include <grpc/grpc.h>
#include <grpcpp/server.h>
#include <sanitizer/tsan_interface.h>

#include <utility>

#include "absl/status/status.h"
#include "sanitizers/interpose.h"

namespace {

// Released by every grpc_call_unref, acquired when Server::Wait returns.
char calls_unreferenced;

}  // namespace

extern "C" grpc_call_error grpc_call_start_batch(grpc_call* call, const grpc_op* ops, size_t nops, void* tag,
                                                 void* reserved) {
  static const auto real =
      reinterpret_cast<decltype(&grpc_call_start_batch)>(clm::sanitizers::Next("grpc_call_start_batch"));
  __tsan_release(call);
  __tsan_release(tag);
  return real(call, ops, nops, tag, reserved);
}

// Not in gRPC's public headers; its signature in gRPC 1.51 (src/core/lib/surface/completion_queue.h).
struct grpc_cq_completion;
void grpc_cq_end_op(grpc_completion_queue* cq, void* tag, absl::Status error,
                    void (*done)(void* done_arg, grpc_cq_completion* storage), void* done_arg,
                    grpc_cq_completion* storage, bool internal) {
  using EndOp = void (*)(grpc_completion_queue*, void*, absl::Status, void (*)(void*, grpc_cq_completion*), void*,
                         grpc_cq_completion*, bool);
  static const auto real =
      reinterpret_cast<EndOp>(clm::sanitizers::NextOf(reinterpret_cast<void*>(&grpc_cq_end_op)));
  __tsan_acquire(tag);
  real(cq, tag, std::move(error), done, done_arg, storage, internal);
}

extern "C" void grpc_call_unref(grpc_call* call) {
  static const auto real = reinterpret_cast<decltype(&grpc_call_unref)>(clm::sanitizers::Next("grpc_call_unref"));
  __tsan_acquire(call);
  __tsan_release(&calls_unreferenced);
  real(call);
}

// Wait is virtual, so a member function pointer names a vtable slot, not code: look it up by its name.
void grpc::Server::Wait() {
  static const auto real = reinterpret_cast<void (*)(grpc::Server*)>(clm::sanitizers::Next("_ZN4grpc6Server4WaitEv"));
  real(this);
  __tsan_acquire(&calls_unreferenced);
}
