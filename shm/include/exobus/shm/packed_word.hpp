#pragma once
// Records packed into one 64-bit word, so that shared memory holds them in an atomic and
// every change of a record is one CAS or one store, never torn. Each record declares its
// fields once, as BitField<offset, width>, next to the drawing of its word; get() and put()
// are the only shifts and masks.
#include <cstdint>

namespace exobus::shm {

template <unsigned Offset, unsigned Width>
struct BitField {
  static_assert(Width > 0 && Offset + Width <= 64, "a field lies inside its word");
  static constexpr std::uint64_t kMask = Width == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << Width) - 1;
  static constexpr unsigned kOffset = Offset;
  static constexpr unsigned kWidth = Width;

  // The field's value in `word`.
  static constexpr std::uint64_t get(std::uint64_t word) { return (word >> Offset) & kMask; }
  // `value` in the field's place; bits beyond its width are dropped.
  static constexpr std::uint64_t put(std::uint64_t value) { return (value & kMask) << Offset; }
};

// True when the fields tile the word in order without overlapping: each starts at or after
// the end of the one before.
template <class First, class Second, class... Rest>
constexpr bool fields_in_order() {
  if constexpr (sizeof...(Rest) == 0) {
    return First::kOffset + First::kWidth <= Second::kOffset;
  } else {
    return First::kOffset + First::kWidth <= Second::kOffset && fields_in_order<Second, Rest...>();
  }
}

}  // namespace exobus::shm
