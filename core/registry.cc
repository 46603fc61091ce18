#include "core/registry.h"

#include <array>
#include <utility>

namespace citycard {

namespace {

template <typename Enum, size_t N>
using NameTable = std::array<std::pair<Enum, std::string_view>, N>;

template <typename Enum, size_t N>
std::string_view NameOf(const NameTable<Enum, N>& table, Enum value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "unknown";
}

template <typename Enum, size_t N>
std::optional<Enum> Parse(const NameTable<Enum, N>& table, std::string_view name) {
  for (const auto& [v, n] : table) {
    if (n == name) return v;
  }
  return std::nullopt;
}

constexpr NameTable<Scheme, 5> kSchemes = {{{Scheme::pension, "pension"},
                                            {Scheme::medical, "medical"},
                                            {Scheme::unemployment, "unemployment"},
                                            {Scheme::work_injury, "work_injury"},
                                            {Scheme::maternity, "maternity"}}};

constexpr NameTable<SpecialGroup, 4> kGroups = {{{SpecialGroup::low_income, "low_income"},
                                                 {SpecialGroup::social_assistance, "social_assistance"},
                                                 {SpecialGroup::disabled, "disabled"},
                                                 {SpecialGroup::elderly, "elderly"}}};

constexpr NameTable<CardStatus, 5> kCardStatuses = {{{CardStatus::active, "active"},
                                                     {CardStatus::blocked, "blocked"},
                                                     {CardStatus::replaced, "replaced"},
                                                     {CardStatus::closed, "closed"},
                                                     {CardStatus::expired, "expired"}}};

constexpr NameTable<BlockReason, 4> kBlockReasons = {{{BlockReason::lost, "lost"},
                                                      {BlockReason::stolen, "stolen"},
                                                      {BlockReason::damaged, "damaged"},
                                                      {BlockReason::fraud, "fraud"}}};

constexpr NameTable<OperatorKind, 8> kOperatorKinds = {{{OperatorKind::bus, "bus"},
                                                        {OperatorKind::metro, "metro"},
                                                        {OperatorKind::taxi, "taxi"},
                                                        {OperatorKind::parking, "parking"},
                                                        {OperatorKind::utility, "utility"},
                                                        {OperatorKind::hospital, "hospital"},
                                                        {OperatorKind::scenic, "scenic"},
                                                        {OperatorKind::counter, "counter"}}};

constexpr NameTable<TerminalKind, 10> kTerminalKinds = {{{TerminalKind::bus, "bus"},
                                                         {TerminalKind::metro, "metro"},
                                                         {TerminalKind::taxi, "taxi"},
                                                         {TerminalKind::parking, "parking"},
                                                         {TerminalKind::utility, "utility"},
                                                         {TerminalKind::hospital, "hospital"},
                                                         {TerminalKind::scenic, "scenic"},
                                                         {TerminalKind::counter, "counter"},
                                                         {TerminalKind::gate, "gate"},
                                                         {TerminalKind::kiosk, "kiosk"}}};

constexpr NameTable<DenyReason, 7> kDenyReasons = {{{DenyReason::lost, "lost"},
                                                    {DenyReason::stolen, "stolen"},
                                                    {DenyReason::damaged, "damaged"},
                                                    {DenyReason::fraud, "fraud"},
                                                    {DenyReason::replaced, "replaced"},
                                                    {DenyReason::closed, "closed"},
                                                    {DenyReason::negative_balance, "negative_balance"}}};

bool IsIdChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

std::string_view SchemeName(Scheme scheme) { return NameOf(kSchemes, scheme); }
std::optional<Scheme> ParseScheme(std::string_view name) { return Parse(kSchemes, name); }
std::string_view SpecialGroupName(SpecialGroup group) { return NameOf(kGroups, group); }
std::optional<SpecialGroup> ParseSpecialGroup(std::string_view name) { return Parse(kGroups, name); }

std::string_view CardStatusName(CardStatus status) { return NameOf(kCardStatuses, status); }
std::optional<CardStatus> ParseCardStatus(std::string_view name) {
  return Parse(kCardStatuses, name);
}
std::string_view BlockReasonName(BlockReason reason) {
  return reason == BlockReason::none ? "" : NameOf(kBlockReasons, reason);
}
std::optional<BlockReason> ParseBlockReason(std::string_view name) {
  return Parse(kBlockReasons, name);
}

std::string_view OperatorKindName(OperatorKind kind) { return NameOf(kOperatorKinds, kind); }
std::optional<OperatorKind> ParseOperatorKind(std::string_view name) {
  return Parse(kOperatorKinds, name);
}
std::string_view TerminalKindName(TerminalKind kind) { return NameOf(kTerminalKinds, kind); }
std::optional<TerminalKind> ParseTerminalKind(std::string_view name) {
  return Parse(kTerminalKinds, name);
}
std::string_view TerminalStatusName(TerminalStatus status) {
  return status == TerminalStatus::active ? "active" : "disabled";
}

std::string_view DenyReasonName(DenyReason reason) { return NameOf(kDenyReasons, reason); }

DenyReason DenyReasonFor(BlockReason reason) {
  CITYCARD_ASSERT(reason != BlockReason::none);
  // BlockReason lost..fraud and DenyReason lost..fraud share their numbers by design.
  return static_cast<DenyReason>(static_cast<uint8_t>(reason));
}

Status ValidateRegistryId(std::string_view id, std::string_view code) {
  bool ok = !id.empty() && id.size() <= kRegistryIdBytesMax;
  for (char c : id) ok = ok && IsIdChar(c);
  if (ok) return Status::Ok();
  return Status::BadInput(std::string(code), "'" + std::string(id) +
                                                 "' is not an id of 1 to 16 characters "
                                                 "A-Z a-z 0-9 - _");
}

}  // namespace citycard
