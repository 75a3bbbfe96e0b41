#pragma once
// The terminal while `exobus top` draws on it: keys are read one at a time without echo,
// the frames go to the alternate screen, and everything is restored when the object goes,
// however the program leaves (an error, `q`). Ctrl-C reads as a key too (ISIG off), so it
// quits through the same path instead of killing the process with the terminal raw.
#include <termios.h>

#include <chrono>
#include <optional>
#include <string_view>

namespace exobus::cli {

class TerminalScreen {
 public:
  // Null when standard input or output is not a terminal.
  static std::optional<TerminalScreen> open();
  ~TerminalScreen();
  TerminalScreen(TerminalScreen&& other) noexcept;
  TerminalScreen(const TerminalScreen&) = delete;
  TerminalScreen& operator=(const TerminalScreen&) = delete;
  TerminalScreen& operator=(TerminalScreen&&) = delete;

  // Replaces what the screen shows.
  void draw(std::string_view frame) const;
  // The key pressed within `timeout`, if any.
  std::optional<char> key(std::chrono::milliseconds timeout) const;

 private:
  explicit TerminalScreen(const termios& saved) : saved_(saved) {}
  termios saved_;
  bool owns_ = true;
};

}  // namespace exobus::cli
