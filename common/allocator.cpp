#include "common/allocator.h"

#include <malloc.h>

#include <cstdlib>

namespace clipcap {

void keep_freed_tensor_memory() {
#if defined(__GLIBC__)
  static const bool user_tuned = std::getenv("MALLOC_MMAP_MAX_") || std::getenv("MALLOC_MMAP_THRESHOLD_") ||
                                 std::getenv("MALLOC_TRIM_THRESHOLD_") || std::getenv("MALLOC_TOP_PAD_");
  if (user_tuned) return;
  // No mmap: glibc caps its mmap threshold at 32 MiB, and a batch's activations pass that
  // (e.g. [64 x 50, 3072] f32 is 39 MiB). Thread arenas still grow by mapping heaps, and a
  // request no thread heap can hold falls back to the main heap.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 0x7fffffff);  // the largest the option holds (an int): never trim in practice
#endif
}

}  // namespace clipcap
