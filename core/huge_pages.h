#pragma once

// An allocator for the few vectors of hundreds of megabytes that settlement fills and sorts
// (a 10,000,000-tap day's card taps: 400 MB, and as much again to sort them). Memory freshly
// taken from the kernel costs a page fault per 4 KiB page touched; memory the kernel is asked
// to back with 2 MiB pages (madvise MADV_HUGEPAGE, on kernels whose transparent huge pages are
// "madvise", Debian's default) costs one per 2 MiB, and fewer TLB misses in the sort's
// scattered writes. Backed so, the day's read took about 1.5 s less CPU (docs/benchmarks.md,
// session of 16:52, 2026-11-27). Where the kernel gives no huge pages the memory is ordinary.

#include <cstddef>
#include <memory>
#include <new>

namespace citycard {

// The huge page size this asks for, and the size from which an allocation is made of them:
// smaller ones are ordinary heap allocations.
inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// Allocates `bytes` (at least kHugePageBytes) aligned to kHugePageBytes, rounded up to a
// multiple of it, and advises the kernel to back it with huge pages. Returns nullptr when
// out of memory. Free with FreeHugePages.
void* AllocateHugePages(size_t bytes);
void FreeHugePages(void* memory);

template <typename T>
class HugePageAllocator {
 public:
  using value_type = T;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}  // NOLINT: converting, as allocators are

  T* allocate(size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
    if (!Huge(n)) return std::allocator<T>().allocate(n);
    void* memory = AllocateHugePages(n * sizeof(T));
    if (memory == nullptr) throw std::bad_alloc();
    return static_cast<T*>(memory);
  }
  void deallocate(T* memory, size_t n) noexcept {
    if (Huge(n)) {
      FreeHugePages(memory);
    } else {
      std::allocator<T>().deallocate(memory, n);
    }
  }

  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }

 private:
  static bool Huge(size_t n) { return n * sizeof(T) >= kHugePageBytes; }
};

}  // namespace citycard
