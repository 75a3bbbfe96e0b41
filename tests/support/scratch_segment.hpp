#pragma once
// A segment of its own for each test; its memory goes with the last process that maps it.
// A child forked after it is made maps it too (a fork keeps shared mappings).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "exobus/shm/recovery.hpp"

namespace exobus::shm::testing {

inline LayoutSpec small_spec(std::uint32_t ring_capacity = 64, std::uint32_t rings = 1) {
  LayoutSpec spec;
  spec.size_classes = {{256, 512, 0, 0, 0}, {4096, 16, 0, 0, 0}};
  for (std::uint32_t r = 0; r < rings; ++r) spec.rings.push_back({ring_capacity, 1000, 3, kNoRing});
  spec.max_instances = 8;
  spec.lanes_per_instance = 4;
  spec.leases_per_lane = 32;
  return spec;
}

// Owns a freshly created segment.
class ScratchSegment {
 public:
  explicit ScratchSegment(const LayoutSpec& spec, const std::string& purpose = "bus") {
    exobus::Result<std::unique_ptr<Segment>> created = Segment::create("exobus-test." + purpose, spec);
    if (!created) throw std::runtime_error(created.error().message);
    segment_ = std::move(created).value();
    plane_ = std::make_unique<DataPlane>(*segment_);
  }
  ScratchSegment(const ScratchSegment&) = delete;
  ScratchSegment& operator=(const ScratchSegment&) = delete;

  Segment& segment() { return *segment_; }
  DataPlane& plane() { return *plane_; }

 private:
  std::unique_ptr<Segment> segment_;
  std::unique_ptr<DataPlane> plane_;
};

inline std::span<const std::byte> bytes_of(const std::string& text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}
inline std::string text_of(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace exobus::shm::testing
