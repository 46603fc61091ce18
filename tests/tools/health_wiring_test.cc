// The health service's wiring (tools/cli/health_wiring.h): the card-proof verifier over the
// key file's card master keys.
#include "tools/cli/health_wiring.h"

#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>

#include "core/card_number.h"
#include "crypto/card_keys.h"
#include "crypto/mac.h"

namespace citycard {
namespace {

const std::string kCard = MakeCardNumber(11);

// The 8-byte proof a card holding `master`'s diversified key makes over `signed_bytes`.
Bytes ProofUnder(ByteView master, ByteView signed_bytes) {
  crypto::Mac16 key = crypto::DeriveCardKey(master, CardNumberToInt(kCard));
  crypto::Mac16 full = crypto::AesCmac(key).Compute(signed_bytes);
  return Bytes(full.begin(), full.begin() + kCardPresenceProofBytes);
}

struct KeyFileFixture {
  KeyFileFixture() {
    std::filesystem::remove(path);
    auto created = crypto::KeyFile::Create(path);
    REQUIRE(created.ok());
    keys.emplace(std::move(*created));
  }
  ~KeyFileFixture() { std::filesystem::remove(path); }
  Bytes Master(uint8_t version) {
    auto master = keys->CardMasterKey(version);
    REQUIRE(master.ok());
    return Bytes(master->begin(), master->end());
  }
  std::string path = (std::filesystem::temp_directory_path() /
                      ("citycard_health_wiring_" + std::to_string(::getpid()) + ".keys"))
                         .string();
  std::optional<crypto::KeyFile> keys;
};

TEST_CASE("A card proof verifies under the key version the card holds, again and again",
          "[tools][health]") {
  KeyFileFixture f;
  Bytes old_master = f.Master(1);
  REQUIRE(f.keys->RotateCardKey().ok());
  Bytes new_master = f.Master(2);
  cli::KeyFileCardProofVerifier verifier(*f.keys);
  const Bytes message = {1, 2, 3, 4, 5};
  // Each twice: the second answer comes from the verifier's kept card keys.
  for (int round = 0; round < 2; ++round) {
    CHECK(verifier.Verify(kCard, message, ProofUnder(new_master, message)));
    CHECK(verifier.Verify(kCard, message, ProofUnder(old_master, message)));
  }
}

TEST_CASE("A forged, truncated or misdirected card proof never verifies, cached key or not",
          "[tools][health]") {
  KeyFileFixture f;
  cli::KeyFileCardProofVerifier verifier(*f.keys);
  const Bytes message = {9, 8, 7};
  Bytes good = ProofUnder(f.Master(1), message);
  REQUIRE(verifier.Verify(kCard, message, good));  // the card's key is now kept
  Bytes forged = good;
  forged[0] ^= 0x01;
  CHECK_FALSE(verifier.Verify(kCard, message, forged));
  CHECK_FALSE(verifier.Verify(kCard, Bytes{9, 8, 6}, good));       // other bytes signed
  CHECK_FALSE(verifier.Verify(MakeCardNumber(12), message, good));  // another card
  CHECK_FALSE(verifier.Verify(kCard, message, Bytes(good.begin(), good.begin() + 7)));
  CHECK_FALSE(verifier.Verify("not-a-card", message, good));
  Bytes wrong_master(crypto::kCardMasterKeyBytes, 0x5A);
  CHECK_FALSE(verifier.Verify(kCard, message, ProofUnder(wrong_master, message)));
}

}  // namespace
}  // namespace citycard
