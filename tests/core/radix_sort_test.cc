#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "core/radix_sort.h"

using namespace citycard;

namespace {

struct Item {
  uint64_t key = 0;
  int64_t order = 0;  // the position the item came in at
};

uint64_t KeyOf(const Item& item) { return item.key; }

std::vector<Item> Numbered(const std::vector<uint64_t>& keys) {
  std::vector<Item> items;
  for (size_t i = 0; i < keys.size(); ++i) items.push_back({keys[i], static_cast<int64_t>(i)});
  return items;
}

// What the radix sort must give: the standard library's stable sort by key.
std::vector<Item> Expected(std::vector<Item> items) {
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.key < b.key; });
  return items;
}

bool Same(const std::vector<Item>& a, const std::vector<Item>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const Item& x, const Item& y) {
    return x.key == y.key && x.order == y.order;
  });
}

}  // namespace

TEST_CASE("A radix sort orders by key and keeps the order of items with equal keys",
          "[core][radix_sort]") {
  std::mt19937_64 random(20261127);
  std::vector<uint64_t> keys;
  // Card numbers of one city (low bytes differ), repeated, and a few keys spread over all
  // eight bytes, so that both skipped and sorted bytes are exercised.
  for (int i = 0; i < 20'000; ++i) keys.push_back(3'100'000'000'000'000ULL + random() % 5'000);
  for (int i = 0; i < 200; ++i) keys.push_back(random());
  keys.push_back(0);
  keys.push_back(UINT64_MAX);
  std::shuffle(keys.begin(), keys.end(), random);
  std::vector<Item> items = Numbered(keys);
  const std::vector<Item> expected = Expected(items);
  StableRadixSort(&items, KeyOf);
  REQUIRE(items.size() == expected.size());
  REQUIRE(Same(items, expected));
}

TEST_CASE("A radix sort of keys that differ only in their high byte still sorts them",
          "[core][radix_sort]") {
  std::vector<Item> items = Numbered({3ULL << 56, 1ULL << 56, 2ULL << 56, 1ULL << 56, 0});
  StableRadixSort(&items, KeyOf);
  REQUIRE(Same(items, Expected(Numbered({3ULL << 56, 1ULL << 56, 2ULL << 56, 1ULL << 56, 0}))));
  REQUIRE(items[0].key == 0);
  REQUIRE(items[1].order == 1);  // the first of the two equal keys stays first
  REQUIRE(items[2].order == 3);
  REQUIRE(items[4].key == 3ULL << 56);
}

TEST_CASE("A radix sort leaves empty, single and all-equal vectors as they are",
          "[core][radix_sort]") {
  std::vector<Item> none;
  StableRadixSort(&none, KeyOf);
  REQUIRE(none.empty());
  std::vector<Item> one = Numbered({42});
  StableRadixSort(&one, KeyOf);
  REQUIRE(one.size() == 1);
  REQUIRE(one[0].key == 42);
  std::vector<Item> equal = Numbered({7, 7, 7, 7});
  StableRadixSort(&equal, KeyOf);
  for (int64_t i = 0; i < 4; ++i) REQUIRE(equal[static_cast<size_t>(i)].order == i);
}
