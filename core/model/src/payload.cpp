#include "exobus/payload.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <cstdint>
#include <string>

namespace exobus {
namespace {

// A validating JSON scanner (RFC 8259, strict UTF-8), run by the sender on every payload.
// It builds nothing and copies nothing: every send pays for it, so it is written for speed
// (a general parser spends most of its time copying strings it will throw away). Nesting
// is kept in an explicit stack, never in recursion, so any depth is safe.
//
// It accepts what RapidJSON accepts, with one exception: numbers beyond the range of a
// double ("1e400") are valid JSON text and pass here, where RapidJSON refuses them. The
// fuzz target fuzz_payload checks the two against each other.
class JsonScanner {
 public:
  explicit JsonScanner(std::string_view text)
      : begin_(reinterpret_cast<const unsigned char*>(text.data())), at_(begin_), end_(begin_ + text.size()) {}

  Result<void> run() {
    skip_whitespace();
    if (at_ == end_) return fail("the document is empty");
    for (;;) {
      // A value is expected here.
      skip_whitespace();
      if (at_ == end_) return fail("a value is missing");
      if (*at_ == '{' || *at_ == '[') {
        const char opening = static_cast<char>(*at_++);
        skip_whitespace();
        if (at_ != end_ && *at_ == (opening == '{' ? '}' : ']')) {
          ++at_;  // empty: a complete value
        } else {
          open_.push_back(opening);
          if (opening == '{' && !member_name()) return failure();
          continue;  // to its first value
        }
      } else if (!scalar()) {
        return failure();
      }
      // After a value: close containers, then go on to the next value or finish.
      for (;;) {
        skip_whitespace();
        if (open_.empty()) {
          if (at_ != end_) return fail("the document root must not be followed by other values");
          return {};
        }
        const bool in_object = open_.back() == '{';
        if (at_ != end_ && *at_ == (in_object ? '}' : ']')) {
          ++at_;
          open_.pop_back();
          continue;
        }
        if (at_ == end_ || *at_ != ',') {
          return fail(in_object ? "an object is missing ',' or '}'" : "an array is missing ',' or ']'");
        }
        ++at_;
        if (in_object) {
          skip_whitespace();
          if (!member_name()) return failure();
        }
        break;
      }
    }
  }

 private:
  bool scalar() {
    switch (*at_) {
      case '"': return string();
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: return number();
    }
  }

  // `"name"` and `:`, leaving the member's value to come.
  bool member_name() {
    if (at_ == end_ || *at_ != '"') return set_error("an object member must start with a name in quotes");
    if (!string()) return false;
    skip_whitespace();
    if (at_ == end_ || *at_ != ':') return set_error("a colon is missing after an object member's name");
    ++at_;
    return true;
  }

  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - at_) < word.size() ||
        std::string_view(reinterpret_cast<const char*>(at_), word.size()) != word) {
      return set_error("invalid value");
    }
    at_ += word.size();
    return true;
  }

  bool number() {
    if (at_ != end_ && *at_ == '-') ++at_;
    if (at_ == end_ || !is_digit(*at_)) return set_error("invalid value");
    if (*at_ == '0') {
      ++at_;
    } else {
      while (at_ != end_ && is_digit(*at_)) ++at_;
    }
    if (at_ != end_ && *at_ == '.') {
      ++at_;
      if (at_ == end_ || !is_digit(*at_)) return set_error("a number's fraction has no digits");
      while (at_ != end_ && is_digit(*at_)) ++at_;
    }
    if (at_ != end_ && (*at_ == 'e' || *at_ == 'E')) {
      ++at_;
      if (at_ != end_ && (*at_ == '+' || *at_ == '-')) ++at_;
      if (at_ == end_ || !is_digit(*at_)) return set_error("a number's exponent has no digits");
      while (at_ != end_ && is_digit(*at_)) ++at_;
    }
    return true;
  }

  bool string() {
    ++at_;  // the opening quote
    for (;;) {
      skip_plain_characters();
      if (at_ == end_) return set_error("a string is missing its closing quote");
      const unsigned char c = *at_;
      if (c == '"') {
        ++at_;
        return true;
      }
      if (c == '\\') {
        if (!escape()) return false;
      } else if (c < 0x20) {
        return set_error("a string contains a raw control character (escape it)");
      } else if (!utf8_sequence()) {
        return false;
      }
    }
  }

  // Printable ASCII other than '"' and '\\': the bulk of most strings, 16 bytes a step.
  void skip_plain_characters() {
#if defined(__SSE2__)
    // Long strings 64 bytes a step, with one test for all four blocks; the block that
    // holds a special byte is then found 16 bytes at a time.
    while (end_ - at_ >= 64) {
      const __m128i any = _mm_or_si128(_mm_or_si128(special_vector(at_), special_vector(at_ + 16)),
                                       _mm_or_si128(special_vector(at_ + 32), special_vector(at_ + 48)));
      if (_mm_movemask_epi8(any) != 0) break;
      at_ += 64;
    }
    while (end_ - at_ >= 16) {
      const unsigned mask = special_bytes(at_);
      if (mask != 0) {
        at_ += __builtin_ctz(mask);
        return;
      }
      at_ += 16;
    }
    if (at_ != end_ && end_ - begin_ >= 16) {
      // The last few bytes in one step too: the 16 that end the text, less the ones
      // before at_ (already scanned), instead of a byte at a time.
      const auto scanned = static_cast<unsigned>(16 - (end_ - at_));
      const unsigned mask = special_bytes(end_ - 16) >> scanned;
      at_ = mask != 0 ? at_ + __builtin_ctz(mask) : end_;
      return;
    }
#endif
    while (at_ != end_ && *at_ >= 0x20 && *at_ < 0x80 && *at_ != '"' && *at_ != '\\') ++at_;
  }

#if defined(__SSE2__)
  // One bit per byte of the 16 at `from` that is not plain: '"', '\\', below 0x20 or
  // above 0x7f.
  static unsigned special_bytes(const unsigned char* from) {
    return static_cast<unsigned>(_mm_movemask_epi8(special_vector(from)));
  }
  // 0xff for each such byte, 0 for the others.
  static __m128i special_vector(const unsigned char* from) {
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from));
    // Signed compare: bytes of 0x80 and above are negative, so "< 0x20" catches them
    // together with the control characters.
    return _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(bytes, quote), _mm_cmpeq_epi8(bytes, backslash)),
                        _mm_cmplt_epi8(bytes, space));
  }
#endif

  bool escape() {
    ++at_;  // the backslash
    if (at_ == end_) return set_error("a string is missing its closing quote");
    switch (*at_++) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't': return true;
      case 'u': break;
      default: --at_; return set_error("invalid escape character in a string");
    }
    const int unit = hex4();
    if (unit < 0) return false;
    if (unit >= 0xd800 && unit <= 0xdbff) {
      // A high surrogate must be followed by an escaped low one.
      if (end_ - at_ < 2 || at_[0] != '\\' || at_[1] != 'u') return set_error("invalid surrogate pair in a string");
      at_ += 2;
      const int low = hex4();
      if (low < 0) return false;
      if (low < 0xdc00 || low > 0xdfff) return set_error("invalid surrogate pair in a string");
    }
    return true;
  }

  // Four hex digits after "\u", or -1 with the error recorded.
  int hex4() {
    int value = 0;
    for (int k = 0; k < 4; ++k, ++at_) {
      if (at_ == end_) return set_error("incorrect hex digit after \\u escape in a string"), -1;
      const unsigned char c = *at_;
      int digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
        digit = (c | 0x20) - 'a' + 10;
      } else {
        return set_error("incorrect hex digit after \\u escape in a string"), -1;
      }
      value = value << 4 | digit;
    }
    return value;
  }

  // One multi-byte UTF-8 character, strictly (RFC 3629: no overlong forms, surrogates or
  // values above U+10FFFF).
  bool utf8_sequence() {
    const unsigned char lead = *at_;
    int continuation;
    unsigned char low = 0x80, high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) {
      continuation = 1;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      continuation = 2;
      if (lead == 0xe0) low = 0xa0;
      if (lead == 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      continuation = 3;
      if (lead == 0xf0) low = 0x90;
      if (lead == 0xf4) high = 0x8f;
    } else {
      return set_error("invalid encoding in a string (not UTF-8)");
    }
    if (end_ - at_ <= continuation) return set_error("invalid encoding in a string (not UTF-8)");
    for (int k = 1; k <= continuation; ++k) {
      const unsigned char byte = at_[k];
      if (byte < (k == 1 ? low : 0x80) || byte > (k == 1 ? high : 0xbf)) {
        return set_error("invalid encoding in a string (not UTF-8)");
      }
    }
    at_ += continuation + 1;
    return true;
  }

  void skip_whitespace() {
    while (at_ != end_ && (*at_ == ' ' || *at_ == '\n' || *at_ == '\r' || *at_ == '\t')) ++at_;
  }

  static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

  bool set_error(const char* reason) {
    reason_ = reason;
    return false;
  }
  Result<void> fail(const char* reason) {
    set_error(reason);
    return failure();
  }
  Result<void> failure() const {
    const std::string offset = std::to_string(at_ - begin_);
    // A raw NUL is never JSON (inside a string it must be escaped): say so plainly.
    if (at_ != end_ && *at_ == '\0') {
      return Error{ErrorCode::malformed_json, "payload is not valid JSON: raw NUL byte at offset " + offset};
    }
    return Error{ErrorCode::malformed_json,
                 std::string("payload is not valid JSON: ") + reason_ + " (at byte offset " + offset + ")"};
  }

  const unsigned char* begin_;
  const unsigned char* at_;
  const unsigned char* end_;
  std::string open_;  // '{' or '[' per open container, innermost last
  const char* reason_ = "";
};

}  // namespace

Result<void> check_payload(std::string_view payload) {
  if (payload.empty()) return {};
  return JsonScanner(payload).run();
}

}  // namespace exobus
