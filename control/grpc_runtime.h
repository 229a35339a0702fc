/* Process-wide settings for the libraries under the gRPC C core, made once before grpc_init(). */
#ifndef RINGMESH_CONTROL_GRPC_RUNTIME_H
#define RINGMESH_CONTROL_GRPC_RUNTIME_H

#ifdef __cplusplus
extern "C" {
#endif

/** Turns off abseil's mutex deadlock detection. Debian builds abseil without NDEBUG, which leaves the detection on:
 * every absl::Mutex lock inside gRPC then updates a global lock-order graph (absl::synchronization_internal::
 * GraphCycles) under a global lock. That is a debugging aid costing the control plane a quarter of its CPU while
 * sidecars connect and a tenth while it pushes (bench/RESULTS.md); release builds of abseil never run it. Call it
 * before any gRPC call; calling it again is harmless. */
void rm_grpc_runtime_init(void);

#ifdef __cplusplus
}
#endif

#endif
