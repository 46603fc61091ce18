#include <catch2/catch.hpp>

#include <cstdint>
#include <numeric>
#include <vector>

#include "core/huge_pages.h"

using namespace citycard;

TEST_CASE("A vector of huge pages starts on a huge page boundary and holds what is put in it",
          "[core][huge_pages]") {
  std::vector<uint64_t, HugePageAllocator<uint64_t>> big(3 * kHugePageBytes / sizeof(uint64_t) + 5);
  REQUIRE(reinterpret_cast<uintptr_t>(big.data()) % kHugePageBytes == 0);
  std::iota(big.begin(), big.end(), uint64_t{1});
  REQUIRE(big.front() == 1);
  REQUIRE(big.back() == big.size());
  // Grown past its capacity, it moves to new huge pages and keeps its elements.
  big.resize(big.size() + kHugePageBytes / sizeof(uint64_t));
  REQUIRE(reinterpret_cast<uintptr_t>(big.data()) % kHugePageBytes == 0);
  REQUIRE(big[12345] == 12346);
}

TEST_CASE("A small vector of the huge page allocator is an ordinary heap allocation",
          "[core][huge_pages]") {
  std::vector<int, HugePageAllocator<int>> small{1, 2, 3};
  small.push_back(4);
  REQUIRE(small.size() == 4);
  REQUIRE(small[3] == 4);
  HugePageAllocator<int> ints;
  HugePageAllocator<char> chars(ints);
  REQUIRE(ints == chars);
}

TEST_CASE("The huge page allocator refuses a size that does not fit in memory's addresses",
          "[core][huge_pages]") {
  HugePageAllocator<uint64_t> allocator;
  REQUIRE_THROWS_AS(allocator.allocate(SIZE_MAX / 4), std::bad_array_new_length);
}
