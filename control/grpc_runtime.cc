/* The one C++ translation unit: abseil's settings are C++ functions (see grpc_runtime.h). */
#include "grpc_runtime.h"

#include <absl/synchronization/mutex.h>

extern "C" void rm_grpc_runtime_init(void)
{
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}
