#pragma once
// The daemon's repair of a channel whose words were overwritten (a hostile or broken
// instance of one of the link's two types: nobody else can write them). Such a channel
// refuses every claim or take as corrupted, or looks full or empty forever; nothing in the
// protocol itself brings it back, so the daemon inspects every channel on its tick and,
// when one is damaged twice in a row without moving, salvages what it can and resets it.
//
// What counts as damage: a slot whose two words form a pair the protocol never makes (see
// the table in channel.hpp), a slot whose lap is out of reach of the tail, or a head and a
// tail further apart than the capacity. The states a live send or take passes through are
// all legal (a pair read across a move is skipped), and they do not last: two inspections a
// second apart that both find damage are not looking at a step in progress. A repair of a
// channel that was not damaged after all costs order, not messages (see below).
//
// The repair, in the daemon (which maps both halves writable):
//   1. salvage: every slot that holds a published handle nobody has consumed (FULL at a
//      lap its consumer word has not passed) is handed to `salvage`, once. The daemon puts
//      a command back in the receiving type's retry ring and drops a reply (its requester
//      times out, as for any lost reply). A salvaged handle is still checked by whoever
//      takes it, like every handle read from another type's memory.
//   2. reset: head and tail jump to a fresh lap boundary beyond both, every consumer word
//      becomes IDLE(that lap) and every producer word TOMBSTONE(the lap before): "consumed
//      at the lap before", the state a slot has between two laps.
// A death of the daemon between 1 and 2 leaves the damage: the next daemon salvages again
// (a second copy, counted as redelivered by its taker: at-least-once, never lost).
// A live instance that was in the middle of a claim or a take when the channel was reset
// finds its slot changed under it: its last store lands on a reset slot and damages it
// again, and the next repair salvages the handle if it was a publish. Non-guarantee: the
// order of the salvaged messages, and replies in a repaired reply channel.
#include <cstdint>
#include <optional>
#include <string>

#include "exobus/shm/channel.hpp"

namespace exobus::shm {

class ChannelRepair {
 public:
  struct Inspection {
    bool damaged = false;
    std::string problem;  // for the daemon's log: what is wrong, where
    std::uint64_t head = 0, tail = 0;
  };
  // Reads both halves; writes nothing.
  static Inspection inspect(const Channel& channel);

  // Salvages (salvage(handle) for each unconsumed published handle; false: it could not be
  // placed now) and resets. Returns how many handles were salvaged, or nullopt when one
  // could not be placed: then nothing was reset, and the next repair salvages them all
  // again (the copies placed twice are redeliveries, flagged so).
  template <class Salvage>
  static std::optional<std::uint32_t> repair(Channel& channel, Salvage&& salvage);

 private:
  static void reset(Channel& channel);
};

template <class Salvage>
std::optional<std::uint32_t> ChannelRepair::repair(Channel& channel, Salvage&& salvage) {
  std::uint32_t salvaged = 0;
  for (std::uint32_t index = 0; index <= channel.mask_; ++index) {
    const ProducerWord produced =
        ProducerWord::decode(channel.producers_[index].state.load(std::memory_order_acquire));
    const ConsumerWord consumed =
        ConsumerWord::decode(channel.consumers_[index].state.load(std::memory_order_acquire));
    // Published and not consumed: the consumer word has not moved past the producer's lap.
    // A READING slot is a live consumer's, which leases what it read: not salvaged.
    const bool unconsumed = consumed.kind == ConsumerKind::idle && consumed.lap != produced.lap + 1;
    if (produced.kind != ProducerKind::full || !unconsumed) continue;
    if (!salvage(MessageHandle::from_word(channel.producers_[index].handle.load(std::memory_order_relaxed)))) {
      return std::nullopt;
    }
    ++salvaged;
  }
  fault_point(FaultPoint::recovery_step);
  reset(channel);
  return salvaged;
}

}  // namespace exobus::shm
