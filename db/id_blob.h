// How the SQLite stores keep a 128-bit id (core/ledger.h Id128) in a BLOB column: 16 bytes,
// hi then lo, big-endian, so that the blobs of an index sort as the ids do. A fixed array, not
// a vector: the stores encode one or more per row they write, on the ingest's hot path.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "core/ledger.h"

namespace citycard::db {

inline constexpr size_t kIdBlobBytes = 16;
using IdBlob = std::array<uint8_t, kIdBlobBytes>;

inline IdBlob EncodeId(const Id128& id) {
  IdBlob out{};
  for (size_t i = 0; i < 8; ++i) {
    out[i] = static_cast<uint8_t>(id.hi >> (56 - 8 * i));
    out[8 + i] = static_cast<uint8_t>(id.lo >> (56 - 8 * i));
  }
  return out;
}

}  // namespace citycard::db
