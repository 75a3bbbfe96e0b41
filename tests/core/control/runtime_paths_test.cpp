// Bus names and the resolution of the runtime directory (the daemon prepares it:
// tests/daemon/runtime_dir_test.cpp).

#include "exobus/control/runtime_paths.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "temp_runtime_dir.hpp"

namespace exobus::control {
namespace {

using Code = ErrorCode;
using exobus::testing::TempRuntimeDir;

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
  for (const std::string& bad :
       std::vector<std::string>{"", "a/b", "..", "bus name", "bus.x", std::string(kMaxBusNameLength + 1, 'x')}) {
    const Result<void> checked = validate_bus_name(bad);
    ASSERT_FALSE(checked.ok()) << bad;
    EXPECT_EQ(checked.error().code, Code::config_error);
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
  EXPECT_EQ(runtime_dir_from_environment().error().code, Code::config_error);
}

TEST(RuntimePaths, SocketPathTooLongForSockaddrIsRefused) {
  const Result<RuntimePaths> paths = runtime_paths("orders", RuntimeDir{"/" + std::string(120, 'd'), false});
  ASSERT_FALSE(paths.ok());
  EXPECT_NE(paths.error().message.find("longer than a Unix socket allows"), std::string::npos);
}

}  // namespace
}  // namespace exobus::control
