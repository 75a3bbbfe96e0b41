// Bus names, runtime directory resolution and the checks on the directory itself.

#include "exobus/control/runtime_paths.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "control_test_support.hpp"

namespace exobus::control {
namespace {

using Code = ControlError::Code;
using testing::TempRuntimeDir;

mode_t mode_of(const std::filesystem::path& path) {
  struct stat info {};
  EXPECT_EQ(::lstat(path.c_str(), &info), 0);
  return info.st_mode & 07777;
}

// Sets an environment variable for one test and restores it after.
class ScopedEnvironment {
 public:
  ScopedEnvironment(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnvironment() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(RuntimePaths, ValidBusNamesAreAccepted) {
  EXPECT_TRUE(validate_bus_name("orders").ok());
  EXPECT_TRUE(validate_bus_name("A-b_9").ok());
  EXPECT_TRUE(validate_bus_name(std::string(kMaxBusNameLength, 'x')).ok());
}

TEST(RuntimePaths, InvalidBusNamesAreRefusedWithTheRule) {
  for (const std::string& bad : std::vector<std::string>{"", "a/b", "..", "bus name", "bus.x", std::string(kMaxBusNameLength + 1, 'x')}) {
    const Result<void> checked = validate_bus_name(bad);
    ASSERT_FALSE(checked.ok()) << bad;
    EXPECT_EQ(checked.error().code, Code::refused);
    EXPECT_NE(checked.error().message.find("A-Z, a-z, 0-9"), std::string::npos) << checked.error().message;
  }
}

TEST(RuntimePaths, SocketAndLockAreNamedAfterTheBus) {
  const RuntimePaths paths = runtime_paths("orders", RuntimeDir{"/run/exobus", false}).value();
  EXPECT_EQ(paths.socket, "/run/exobus/orders.sock");
  EXPECT_EQ(paths.lock, "/run/exobus/orders.lock");
  EXPECT_EQ(paths.bus, "orders");
}

TEST(RuntimePaths, EnvironmentVariableChoosesTheDirectory) {
  ScopedEnvironment environment(kRuntimeDirEnvironmentVariable, "/srv/exobus/");
  const RuntimePaths paths = runtime_paths("orders").value();
  EXPECT_EQ(paths.socket, "/srv/exobus/orders.sock");
  EXPECT_FALSE(paths.dir.per_user_default);
}

TEST(RuntimePaths, DefaultDirectoryIsPerUser) {
  ScopedEnvironment environment(kRuntimeDirEnvironmentVariable, nullptr);
  const RuntimeDir dir = runtime_dir_from_environment().value();
  EXPECT_EQ(dir.path, "/tmp/exobus-" + std::to_string(::geteuid()));
  EXPECT_TRUE(dir.per_user_default);
}

TEST(RuntimePaths, RelativeEnvironmentDirectoryIsRefused) {
  ScopedEnvironment environment(kRuntimeDirEnvironmentVariable, "relative/dir");
  EXPECT_EQ(runtime_dir_from_environment().error().code, Code::refused);
}

TEST(RuntimePaths, SocketPathTooLongForSockaddrIsRefused) {
  const Result<RuntimePaths> paths = runtime_paths("orders", RuntimeDir{"/" + std::string(120, 'd'), false});
  ASSERT_FALSE(paths.ok());
  EXPECT_NE(paths.error().message.find("longer than a Unix socket allows"), std::string::npos);
}

TEST(RuntimeDirectory, MissingDirectoryIsCreatedOwnerOnly) {
  TempRuntimeDir parent;
  const auto dir = parent.path() / "run";
  const mode_t old_umask = ::umask(0);  // a permissive umask must not leak into the mode
  const Result<void> prepared = prepare_runtime_dir(dir);
  ::umask(old_umask);
  ASSERT_TRUE(prepared.ok()) << prepared.error().message;
  EXPECT_EQ(mode_of(dir), 0700u);
}

TEST(RuntimeDirectory, GroupModeIsApplied) {
  TempRuntimeDir dir;
  ASSERT_TRUE(prepare_runtime_dir(dir.path(), 0770).ok());
  EXPECT_EQ(mode_of(dir.path()), 0770u);
}

TEST(RuntimeDirectory, WorldWritableModeIsRefused) {
  TempRuntimeDir dir;
  const Result<void> prepared = prepare_runtime_dir(dir.path(), 0777);
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.error().code, Code::refused);
}

TEST(RuntimeDirectory, WorldWritableDirectoryWithoutStickyBitIsRefused) {
  TempRuntimeDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
  const Result<void> prepared = prepare_runtime_dir(dir.path());
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.error().code, Code::permission_denied);
  EXPECT_NE(prepared.error().message.find("world-writable"), std::string::npos) << prepared.error().message;
}

TEST(RuntimeDirectory, StickyWorldWritableDirectoryIsAcceptedAndKeepsItsMode) {
  TempRuntimeDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 01777), 0);
  ASSERT_TRUE(prepare_runtime_dir(dir.path()).ok());
  EXPECT_EQ(mode_of(dir.path()), 01777u);
}

TEST(RuntimeDirectory, DirectoryOfAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  TempRuntimeDir dir;
  ASSERT_EQ(::chown(dir.path().c_str(), 65534, 65534), 0);
  const Result<void> prepared = prepare_runtime_dir(dir.path());
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.error().code, Code::permission_denied);
  EXPECT_NE(prepared.error().message.find("owned by"), std::string::npos) << prepared.error().message;
  EXPECT_NE(prepared.error().message.find("65534"), std::string::npos) << prepared.error().message;
}

TEST(RuntimeDirectory, SymbolicLinkIsRefused) {
  TempRuntimeDir parent;
  const auto target = parent.path() / "target";
  const auto link = parent.path() / "link";
  ASSERT_EQ(::mkdir(target.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  const Result<void> prepared = prepare_runtime_dir(link);
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.error().code, Code::permission_denied);
  EXPECT_NE(prepared.error().message.find("symbolic link"), std::string::npos) << prepared.error().message;
}

TEST(RuntimeDirectory, MissingParentIsAnIoError) {
  TempRuntimeDir parent;
  const Result<void> prepared = prepare_runtime_dir(parent.path() / "no" / "such");
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.error().code, Code::io);
}

}  // namespace
}  // namespace exobus::control
