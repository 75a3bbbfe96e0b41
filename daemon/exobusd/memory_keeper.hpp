#pragma once
// The memory of a bus outlives its daemon. exobusd creates the bus's memory (sealed memfds
// that no file names) and hands a copy of every descriptor to a keeper: the same program
// started with --keep, in a session of its own, holding the descriptors and nothing else.
// A restarted exobusd takes the memory back from the keeper and re-attaches, as it did when
// the memory was a file in /dev/shm, without any other user being able to plant, open or
// resize it.
//
//   <runtime dir>/<bus>.keep   the keeper's socket (SOCK_SEQPACKET, the daemon's user only)
//
// Requests are one word each, descriptors travel as SCM_RIGHTS, at most 200 per datagram:
// "keep" (with descriptors: replaces what is held), "more" (with descriptors: adds them),
// "give N" (answered with up to 200 held descriptors from the N-th on), "release" (drop
// it all and exit).
// The keeper exits when released, or when its socket file goes (its runtime directory was
// removed): it never outlives the bus it keeps.
//
// Not promised: if the daemon and the keeper both die, the next daemon lays the bus out
// anew; services still running on the old memory say so and must be restarted.
#include <filesystem>
#include <optional>
#include <span>
#include <vector>

#include "exobus/control/runtime_paths.hpp"
#include "exobus/control/unique_fd.hpp"
#include "exobus/error.hpp"

namespace exobus::daemon {

class MemoryKeeper {
 public:
  // The keeper of the bus, if one runs and is of this user.
  static std::optional<MemoryKeeper> connect(const control::RuntimePaths& paths);
  // Starts a keeper for the bus (`program` is exobusd itself) and connects to it.
  static Result<MemoryKeeper> start(const control::RuntimePaths& paths, const std::filesystem::path& program);

  // The memory the keeper holds, in the order it was kept.
  Result<std::vector<control::UniqueFd>> take_back();
  // Hands the keeper the bus's memory (it keeps its own copies of the descriptors), in
  // place of what it held; keep_more() adds to it.
  Result<void> keep(std::span<const int> fds);
  Result<void> keep_more(std::span<const int> fds);
  // The bus is done with: the keeper drops the memory and exits.
  void release();
  // Whether the keeper still answers (its connection did not hang up).
  bool alive() const;

 private:
  explicit MemoryKeeper(control::UniqueFd connection) : connection_(std::move(connection)) {}
  Result<std::vector<control::UniqueFd>> request(const std::string& word, std::span<const int> fds);
  control::UniqueFd connection_;
};

// exobusd --keep: the keeper's own loop. Returns the process's exit status.
int run_keeper(const control::RuntimePaths& paths);

}  // namespace exobus::daemon
