// Fuzz target: handle and state-word validation on a small live segment (data_plane.hpp).
// The input is a program: each step is one opcode byte and one 64-bit word. Steps write
// the word into a ring slot, a ring's head or tail, a chunk's state, or a lease entry, or
// run take / ack / renew / release / reject / read / send / recovery with tokens and
// handles taken from the word. Every value read from shared memory is checked before use,
// so no program may crash, read out of bounds or hang a call.
// The segment is created once; each input starts from the same snapshot of it.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "exobus/shm/recovery.hpp"
#include "exobus/shm/segment.hpp"
#include "scratch_segment.hpp"

namespace exobus::shm {
namespace {

constexpr std::uint32_t kRings = 3;  // ring 2 is the dead letters of rings 0 and 1
constexpr std::uint32_t kInstances = 4;
constexpr std::uint32_t kLanesPerInstance = 2;

LayoutSpec fuzz_spec() {
  LayoutSpec spec;
  spec.size_classes = {{256, 16, 0, 0, 0}, {1024, 4, 0, 0, 0}};
  spec.rings = {{16, 50, 3, 2}, {8, 50, 2, 2}, {8, 1000, 1, kNoRing}};
  spec.max_instances = kInstances;
  spec.lanes_per_instance = kLanesPerInstance;
  spec.leases_per_lane = 4;
  return spec;
}

// A segment with some traffic in it, and a copy of it to start every input from.
class LiveBus {
 public:
  LiveBus() : scratch_(fuzz_spec(), "fuzz-handles") {
    // Some live content: messages queued on both rings, one taken and held.
    LaneCursor sender{plane().lane_of(1, 0)};
    const std::uint16_t both[] = {0, 1};
    for (std::uint32_t k = 0; k < 6; ++k) {
      const std::uint32_t id = k;
      plane().send(sender, std::as_bytes(std::span(&id, 1)), both);
    }
    LaneCursor taker{plane().lane_of(2, 0)};
    plane().take(taker, 0, DataPlane::now_ms());
    size_ = segment().layout().total_size;
    snapshot_.assign(segment().base(), segment().base() + size_);
  }

  void reset() { std::memcpy(scratch_.segment().base(), snapshot_.data(), size_); }
  Segment& segment() { return scratch_.segment(); }
  DataPlane& plane() { return scratch_.plane(); }

 private:
  testing::ScratchSegment scratch_;
  std::size_t size_ = 0;
  std::vector<std::byte> snapshot_;
};

RingHeader& ring_header(Segment& segment, std::uint32_t ring) {
  return *reinterpret_cast<RingHeader*>(segment.base() + segment.ring_descriptor(ring).offset);
}
RingSlot& ring_slot(Segment& segment, std::uint32_t ring, std::uint32_t index) {
  RingSlot* first = reinterpret_cast<RingSlot*>(&ring_header(segment, ring) + 1);
  return first[index % segment.ring_descriptor(ring).capacity];
}
ChunkHeader& chunk_header(Segment& segment, std::uint32_t chunk) {
  std::uint32_t total = 0;
  for (const SizeClassLayout& size_class : segment.layout().size_classes) total += size_class.chunk_count;
  chunk %= total;
  for (const SizeClassLayout& size_class : segment.layout().size_classes) {
    if (chunk < size_class.chunk_count) {
      return *reinterpret_cast<ChunkHeader*>(segment.base() + size_class.offset +
                                             chunk * (kChunkHeaderBytes + size_class.chunk_size));
    }
    chunk -= size_class.chunk_count;
  }
  std::abort();
}

LeaseToken token_of(std::uint64_t word) {
  return LeaseToken{static_cast<std::uint16_t>(word), static_cast<std::uint32_t>(word >> 16) & 0xff,
                    static_cast<std::uint32_t>(word >> 24)};
}

}  // namespace
}  // namespace exobus::shm

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace exobus::shm;
  static LiveBus bus;
  bus.reset();
  Segment& segment = bus.segment();
  DataPlane& plane = bus.plane();
  std::vector<LeaseToken> held;
  LaneCursor cursors[kInstances * kLanesPerInstance];
  for (std::uint32_t k = 0; k < kInstances * kLanesPerInstance; ++k) cursors[k].lane = static_cast<std::uint16_t>(k);
  std::uint32_t now = DataPlane::now_ms();

  for (std::size_t at = 0; at + 9 <= size; at += 9) {
    const std::uint8_t op = data[at];
    std::uint64_t word = 0;
    std::memcpy(&word, data + at + 1, sizeof word);
    const std::uint32_t select = op >> 4;
    const std::uint32_t ring = select % kRings;
    LaneCursor& cursor = cursors[(select % (kInstances - 1) + 1) * kLanesPerInstance];
    switch (op & 0x0f) {
      case 0: ring_slot(segment, ring, select / kRings).state.store(word); break;
      case 1: ring_slot(segment, ring, select / kRings).handle.store(word); break;
      case 2: (select & 1 ? ring_header(segment, ring).head : ring_header(segment, ring).tail).store(word); break;
      case 3: chunk_header(segment, select).state.store(word); break;
      case 4: chunk_header(segment, select).length.store(static_cast<std::uint32_t>(word)); break;
      case 5: {
        LeaseEntry& entry = segment.leases(select % segment.lane_count())[word % segment.layout().leases_per_lane];
        if (word >> 63) {
          entry.handle.store(word >> 8);
        } else {
          entry.state.store(word >> 8);
        }
        break;
      }
      case 6: {
        const TakeOutcome taken = plane.take(cursor, static_cast<std::uint16_t>(ring), now);
        if (taken.status == TakeOutcomeStatus::ok) {
          if (taken.delivery.payload.size() > 1024) std::abort();
          held.push_back(taken.delivery.lease);
        }
        break;
      }
      case 7:
      case 8:
      case 9:
      case 10: {
        const LeaseToken token = (!held.empty() && (word & 1)) ? held[(word >> 1) % held.size()] : token_of(word);
        if ((op & 0x0f) == 7) plane.ack(token);
        if ((op & 0x0f) == 8) plane.renew(token, now);
        if ((op & 0x0f) == 9) plane.release(token, cursor);
        if ((op & 0x0f) == 10) plane.reject(token, cursor);
        break;
      }
      case 11: {
        const ChunkView view = segment.pool().read(MessageHandle::from_word(word));
        if (view.valid && view.payload.size() > 1024) std::abort();
        plane.still_pending(MessageHandle::from_word(word));
        break;
      }
      case 12: {
        const std::uint16_t targets[] = {static_cast<std::uint16_t>(ring), static_cast<std::uint16_t>(word % kRings)};
        const std::uint32_t id = static_cast<std::uint32_t>(word);
        plane.send(cursor, std::as_bytes(std::span(&id, 1)), std::span(targets, targets[0] == targets[1] ? 1 : 2));
        break;
      }
      case 13: {
        LaneCursor daemon{plane.lane_of(0, 0)};
        Recovery(plane, daemon).recover_instance(select % kInstances);
        break;
      }
      case 14: {
        now += static_cast<std::uint32_t>(word % 5000);
        LaneCursor daemon{plane.lane_of(0, 0)};
        Recovery(plane, daemon).reclaim_expired(now);
        break;
      }
      default: plane.audit(); break;
    }
  }
  return 0;
}
