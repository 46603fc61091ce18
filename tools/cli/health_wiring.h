// Wiring of the health service (core/health.h) for the `citycard` program: its SQLite store on
// the command's database, the card-proof verifier over the key file's card master keys, the
// voucher signer over the core's Ed25519 key, and the handling of the protocol's online
// identity-check and medical-settlement requests (terminals/messages.h) for the server's
// backend. docs/medical.md describes what the requests do.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "core/health.h"
#include "crypto/key_file.h"
#include "crypto/keyed_tap_authenticator.h"
#include "db/sqlite_health_store.h"
#include "terminals/backend.h"
#include "terminals/messages.h"
#include "tools/cli/environment.h"
#include "tools/server/ingest_backend.h"

namespace citycard::cli {

// A card's proof: the first 8 bytes of AES-128-CMAC under the card's key
// (crypto/card_keys.h DeriveCardKey) over the signed bytes. The request does not say which
// card key version the card holds, so every version the key file has is tried, newest first
// (at most 255 CMACs; a card keeps the key it was issued under after a rotation).
// The derived card keys are kept (crypto::KeyedTapAuthenticator's cache, at most
// crypto::kCardKeyCacheMax, least recently used out first): a card seen again costs one CMAC
// and no key derivation or cipher set-up. Thread-safe (one mutex around the cache).
class KeyFileCardProofVerifier final : public CardProofVerifier {
 public:
  // The key file must outlive the verifier.
  explicit KeyFileCardProofVerifier(const crypto::KeyFile& keys) : keys_(keys), card_keys_(keys) {}
  bool Verify(std::string_view card_no, ByteView signed_bytes, ByteView proof) override;

 private:
  const crypto::KeyFile& keys_;
  std::mutex mutex_;  // guards card_keys_
  crypto::KeyedTapAuthenticator card_keys_;
};

// Signs with KeyFile::CoreSigner().
class CoreVoucherSigner final : public VoucherSigner {
 public:
  explicit CoreVoucherSigner(const crypto::KeyFile& keys) : keys_(keys) {}
  std::array<uint8_t, kVoucherSignatureBytes> Sign(ByteView message) const override;

 private:
  const crypto::KeyFile& keys_;
};

// The health service over an Environment's database, ledger, registry and keys.
class HealthRuntime {
 public:
  // Opens (and brings up to date) the "health" store on env.database(). The Environment must
  // outlive the runtime. Failures: the store's.
  static Result<std::unique_ptr<HealthRuntime>> Open(Environment& env);
  HealthService& service() { return *service_; }
  HealthStore& store() { return *store_; }

 private:
  HealthRuntime() = default;
  std::unique_ptr<db::SqliteHealthStore> store_;
  std::unique_ptr<KeyFileCardProofVerifier> verifier_;
  std::unique_ptr<CoreVoucherSigner> signer_;
  std::unique_ptr<HealthService> service_;
};

// True for the online requests HandleHealthOnline answers: identity_check_request and
// medical_settlement_request.
bool IsHealthRequest(const terminals::OnlineRequest& request);

// Answers an identity check or a medical settlement from a hospital reader (docs/medical.md
// "Online requests"). The card proof is the request body up to its card_proof field. A
// settlement is booked for the terminal's operator (which must be a hospital) under the
// medical scheme, with the core's own split. Refusals are answered with their protocol code;
// a store failure with internal_error. For any other request: unsupported_request.
// Synchronous (it commits to the database): a backend calls it off the I/O threads.
terminals::OnlineResponse HandleHealthOnline(HealthService& service,
                                             const terminals::TerminalIdentity& terminal,
                                             const terminals::OnlineRequest& request);

// True for identity_check_request alone: for IngestBackendOptions::joins_group, so that each
// check's audit record is written in the writer's online group transaction (durable before
// the answer, one commit for the whole group) rather than one commit per check.
bool IsIdentityCheck(const terminals::OnlineRequest& request);

// Makes `backend` answer identity checks in its online groups (joins_group, online_in_group)
// with HandleHealthOnline over `service`, which must be over the backend's own connection.
void JoinIdentityChecksToGroups(server::IngestBackendOptions& backend, HealthService& service);

// For the server's backend (tools/server/ingest_backend.h IngestBackendOptions::online_fallback):
// answers the health requests with HandleHealthOnline and any other with unsupported_request.
// The service must be over the backend's own connection and ledger (the writer thread's).
std::function<terminals::OnlineResponse(const terminals::TerminalIdentity&,
                                        const terminals::OnlineRequest&)>
HealthOnlineFallback(HealthService& service);

}  // namespace citycard::cli
