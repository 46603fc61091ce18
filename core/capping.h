// Daily caps after the fact: what a stored-value card paid above its daily cap is refunded to
// its purse by the operators who were paid. Readers price offline and rarely know what the card
// paid elsewhere that day, so the core applies the cap at settlement from the booked taps.
// Pure: the caller gives one card's taps of one day and the caps of the card's profile. The
// rule and its accounting: docs/fares.md, "Daily caps and rebates".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/fares.h"
#include "core/profile.h"
#include "core/status.h"

namespace citycard {

// The most taps of one card on one day that a rebate is computed over; a card with more is
// not a person riding.
inline constexpr size_t kCapTapsPerDayMax = 10'000;

// One booked tap that moved money from the card to an operator.
struct PaidTap {
  std::string operator_id;
  RideMode mode = RideMode::bus;
  int64_t amount_fen = 0;  // what the card paid (0 .. kFareFenMax)
  int64_t time_s = 0;      // the tap's time; decides the order taps reach the cap
};

struct OperatorRebate {
  std::string operator_id;
  int64_t paid_fen = 0;    // what the card paid this operator that day
  int64_t rebate_fen = 0;  // what the operator refunds (0 .. paid_fen)
};

struct CapRebates {
  // Per input tap, in the input's order: the part of it above the cap.
  std::vector<int64_t> rebate_fen_by_tap;
  // One entry per operator paid, sorted by operator id (including those refunding 0).
  std::vector<OperatorRebate> operators;
  int64_t paid_fen = 0;    // all taps
  int64_t rebate_fen = 0;  // sum of every cap's excess; equals the sums of both lists above
};

// Computes the rebates of one card for one local day.
//
// For each cap of `profile` (a set of modes), the card's taps on those modes are taken in time
// order (ties in input order); each tap keeps what still fits under the cap and the rest of
// it is rebated by that tap's operator. The rebate is therefore exactly the excess
// (paid - cap, or 0), and it is taken from the operators paid last, as if the reader had
// known the card's day. Taps on modes without a cap are never rebated.
//
// Failure: Kind::bad_input, code "invalid_cap_input", when a tap's amount is outside
// 0..kFareFenMax, its operator id is empty, the taps span more than one local day, or there
// are more than kCapTapsPerDayMax taps.
Result<CapRebates> ComputeCapRebates(const std::vector<PaidTap>& taps, Profile profile,
                                     const std::vector<DailyCap>& caps);

}  // namespace citycard
