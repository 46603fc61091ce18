#pragma once

// A stable sort by an unsigned 64-bit key, for the large vectors settlement sorts (ten million
// card taps of a day): a least-significant-digit radix sort, one byte a pass, which touches
// each item once per byte in which the keys differ, where a comparison sort touches it about
// log2(n) times through a comparator (docs/benchmarks.md, session of 16:52, 2026-11-27).

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace citycard {

// The number of distinct values one pass sorts by: a byte of the key.
inline constexpr size_t kRadixBuckets = 256;
inline constexpr size_t kRadixKeyBytes = sizeof(uint64_t);

// Sorts `items` by `key(item)` ascending. Stable: items of equal keys keep their order, so a
// vector already in order of a second key comes out sorted by (key, second key). A byte in
// which all keys are equal costs no pass, so keys that differ only in their low bytes (the
// card numbers of one city) take two or three passes. `key` must be a pure function of the item.
// Uses a scratch vector the size of `items`, from the same allocator (freed on return); T must
// be movable and default-constructible.
template <typename T, typename Alloc, typename KeyFn>
void StableRadixSort(std::vector<T, Alloc>* items, KeyFn key) {
  const size_t n = items->size();
  if (n < 2) return;
  // Every byte's counts in one pass over the keys, so that bytes all keys share are known
  // before any item moves.
  std::array<std::array<size_t, kRadixBuckets>, kRadixKeyBytes> counts{};
  // Taken before any item moves: a moved-from item need not keep its key.
  const uint64_t first_key = key((*items)[0]);
  for (const T& item : *items) {
    const uint64_t k = key(item);
    for (size_t b = 0; b < kRadixKeyBytes; ++b) ++counts[b][(k >> (8 * b)) & 0xff];
  }
  std::vector<T, Alloc> scratch(n, T{}, items->get_allocator());
  std::vector<T, Alloc>* from = items;
  std::vector<T, Alloc>* to = &scratch;
  for (size_t b = 0; b < kRadixKeyBytes; ++b) {
    const auto& byte_counts = counts[b];
    const uint64_t first_byte = (first_key >> (8 * b)) & 0xff;
    // All keys share this byte: the pass would move every item to where it is.
    if (byte_counts[first_byte] == n) continue;
    std::array<size_t, kRadixBuckets> next;
    size_t start = 0;
    for (size_t d = 0; d < kRadixBuckets; ++d) {
      next[d] = start;
      start += byte_counts[d];
    }
    for (T& item : *from) {
      const size_t d = (key(item) >> (8 * b)) & 0xff;
      (*to)[next[d]++] = std::move(item);
    }
    std::swap(from, to);
  }
  if (from != items) *items = std::move(*from);
}

}  // namespace citycard
