#pragma once
// The daemon's side of a runtime directory (see exobus/control/runtime_paths.hpp): it
// creates the directory and gives it the bus's mode and group.

#include <sys/types.h>

#include <filesystem>
#include <optional>

#include "exobus/error.hpp"

namespace exobus::daemon {

// Daemon side: creates `dir` if missing (the last component only), gives it to `group` when
// given and sets its mode to `mode` with fchmod, so the umask does not matter; a sticky
// directory keeps its mode and group. Refuses a symbolic link, a directory owned by another
// user, a world-writable one without the sticky bit, and a `mode` that is world-writable or
// does not give the owner rwx.
Result<void> prepare_runtime_dir(const std::filesystem::path& dir, mode_t mode = 0700,
                                 std::optional<gid_t> group = std::nullopt);

}  // namespace exobus::daemon
