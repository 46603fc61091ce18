// The small city `citycard demo` provisions besides the operators of the replayed file
// (docs/demo.md "The city"): its sites (an operator with one terminal each) and its holders,
// generated deterministically (valid national ids, Chinese names, some elderly, students and
// low-income). Pure data; tools/cli/demo.cc books it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/profile.h"
#include "core/registry.h"

namespace citycard::cli {

// How many holders the demo's registry file has.
inline constexpr size_t kDemoHolders = 24;
// What the counter loads on each new card.
inline constexpr int64_t kDemoCounterTopupFen = 10'000;
// How many taxi rides and car park exits the city's cards make through the protocol.
inline constexpr size_t kDemoTaxiRides = 6;
inline constexpr size_t kDemoParkings = 4;
// The utility bills: kDemoBillsPaid cards from kDemoBillCardsFirst on pay by mandate (cards the
// taps leave alone, so that the simulated cards' purses stay what the core knows).
inline constexpr size_t kDemoBillCardsFirst = 11;
inline constexpr size_t kDemoBillsPaid = 8;
// A card sequence number the demo never issues (the bill naming it is an unknown_card).
inline constexpr uint64_t kDemoUnknownCardSequence = 987'654;
// The hospital's patient (a card the taps and bills leave alone) and the outpatient bill.
inline constexpr size_t kDemoPatientCard = 21;
inline constexpr int64_t kDemoMedicalBillFen = 68'000;
// The card the kiosk tops up through the protocol, and by how much.
inline constexpr size_t kDemoKioskCard = 22;
inline constexpr int64_t kDemoKioskTopupFen = 5'000;
// When the city's steps happen, after the start of its day (the city is provisioned at 0):
// the lost card, the rides (from then on, two minutes apart), their upload and the kiosk,
// the bills, the hospital.
inline constexpr int64_t kDemoLostCardOffsetSeconds = 600;
inline constexpr int64_t kDemoRidesOffsetSeconds = 3600;
inline constexpr int64_t kDemoUploadOffsetSeconds = 3 * 3600;
inline constexpr int64_t kDemoBillsOffsetSeconds = 4 * 3600;
inline constexpr int64_t kDemoHospitalOffsetSeconds = 5 * 3600;
// What the forged card claims to hold.
inline constexpr int64_t kDemoForgedBalanceFen = 90'000;

struct DemoSite {
  std::string operator_id;
  std::string operator_name;
  OperatorKind operator_kind = OperatorKind::taxi;
  int64_t fee_bp = 0;
  std::string terminal_id;
  TerminalKind terminal_kind = TerminalKind::taxi;
  std::string route;
};

// The taxi company, the car park, water, electricity and gas, the hospital, the card office
// counter and the kiosk, in that order.
const std::vector<DemoSite>& DemoSites();

struct DemoHolder {
  std::string national_id;  // 18 characters, valid check character
  std::string name;         // Chinese
  Profile profile = Profile::adult;
  std::string groups;       // the registry file's "groups" field ("elderly", "low_income", "")
  int64_t medical_fen = 0;  // the registry's opening medical account
};

// kDemoHolders holders, the same on every run: every sixth elderly, every fifth a student,
// every seventh low-income, the others adults; all in Shenzhen (region 4403xx).
std::vector<DemoHolder> DemoHolders();

// The holders as a registry file (header national_id,name,schemes,groups,medical_account).
std::string DemoRegistryCsv(const std::vector<DemoHolder>& holders);

}  // namespace citycard::cli
