#include "terminal_screen.hpp"

#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace exobus::cli {

namespace {

void write_all(std::string_view text) {
  while (!text.empty()) {
    const ssize_t written = ::write(STDOUT_FILENO, text.data(), text.size());
    if (written <= 0) return;  // the terminal went away: nothing left to show it
    text.remove_prefix(static_cast<std::size_t>(written));
  }
}

// Alternate screen, cursor hidden; and back.
constexpr std::string_view kEnter = "\x1b[?1049h\x1b[?25l";
constexpr std::string_view kLeave = "\x1b[?25h\x1b[?1049l";

}  // namespace

std::optional<TerminalScreen> TerminalScreen::open() {
  if (::isatty(STDIN_FILENO) == 0 || ::isatty(STDOUT_FILENO) == 0) return std::nullopt;
  termios saved{};
  if (::tcgetattr(STDIN_FILENO, &saved) != 0) return std::nullopt;
  termios raw = saved;
  raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ISIG);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  if (::tcsetattr(STDIN_FILENO, TCSANOW, &raw) != 0) return std::nullopt;
  write_all(kEnter);
  return TerminalScreen(saved);
}

TerminalScreen::TerminalScreen(TerminalScreen&& other) noexcept : saved_(other.saved_) { other.owns_ = false; }

TerminalScreen::~TerminalScreen() {
  if (!owns_) return;
  write_all(kLeave);
  ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
}

void TerminalScreen::draw(std::string_view frame) const {
  // Home and clear, then the frame with each line ended by CR LF (output processing may be
  // on or off; CR LF is right either way).
  std::string screen = "\x1b[H\x1b[2J";
  for (const char c : frame) {
    if (c == '\n') screen += '\r';
    screen += c;
  }
  screen += "\r\npress q to quit";
  write_all(screen);
}

std::optional<char> TerminalScreen::key(std::chrono::milliseconds timeout) const {
  pollfd input{STDIN_FILENO, POLLIN, 0};
  if (::poll(&input, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
  char c = 0;
  if (::read(STDIN_FILENO, &c, 1) != 1) return 'q';  // end of input: nobody left to press a key
  return c;
}

}  // namespace exobus::cli
