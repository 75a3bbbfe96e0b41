// The daemon's preparation of its runtime directory: created with the bus's mode whatever
// the umask, and refused when someone else could have planted or could replace it.

#include "exobus/daemon/runtime_dir.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "temp_runtime_dir.hpp"

namespace exobus::daemon {
namespace {

using Code = ErrorCode;
using exobus::testing::TempRuntimeDir;

mode_t mode_of(const std::filesystem::path& path) {
  struct stat info {};
  EXPECT_EQ(::lstat(path.c_str(), &info), 0);
  return info.st_mode & 07777;
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
}  // namespace exobus::daemon
