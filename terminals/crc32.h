// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), the frame checksum of
// docs/protocol.md. Pure. It detects line noise on serial links; it is not a MAC.
#pragma once

#include <cstdint>

#include "core/bytes.h"

namespace citycard::terminals {

// CRC of `data`, continuing from `crc` (pass the previous result to checksum in pieces;
// start with 0). Crc32("123456789") == 0xCBF43926, the standard check value.
uint32_t Crc32(ByteView data, uint32_t crc = 0);

}  // namespace citycard::terminals
