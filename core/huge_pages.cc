#include "core/huge_pages.h"

#include <sys/mman.h>

#include <cstdlib>

#include "core/status.h"

namespace citycard {

void* AllocateHugePages(size_t bytes) {
  CITYCARD_ASSERT(bytes >= kHugePageBytes);
  // aligned_alloc wants a multiple of the alignment; the rounding is at most one huge page on
  // hundreds of them.
  const size_t rounded = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  void* memory = std::aligned_alloc(kHugePageBytes, rounded);
  if (memory == nullptr) return nullptr;
  // Advice only: a kernel without transparent huge pages refuses it, and the memory is then
  // ordinary pages, which is all the vectors need.
  (void)::madvise(memory, rounded, MADV_HUGEPAGE);
  return memory;
}

void FreeHugePages(void* memory) { std::free(memory); }

}  // namespace citycard
