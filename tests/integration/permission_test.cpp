// Who may run an instance of a service type, checked with a real uid: a child process drops
// from root to nobody and tries to connect.
//
// Two layers can refuse nobody, and each test names the one it shows:
// - the control socket: exobusd opens its runtime directory (0710) and socket (0660) to the
//   bus's group only, by default its own group, so a user outside it cannot even reach the
//   daemon (the kernel refuses connect());
// - the daemon's policy: with the directory and socket opened up, the daemon reads the
//   peer's uid (SO_PEERCRED) and refuses a type whose allowed-users does not list it.
#include <gtest/gtest.h>
#include <grp.h>
#include <sys/stat.h>

#include <cstring>

#include "bus_fixture.hpp"

namespace exobus::integration {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

constexpr const char* kServices = R"(
  web:
    config: { sends: [job.run] }
  worker:
    config: { receives: [job.run], allowed-users: [root] }
)";

// In a forked child: drops from root to nobody for good.
bool become_nobody() { return ::setgroups(0, nullptr) == 0 && ::setgid(kNogroup) == 0 && ::setuid(kNobody) == 0; }

TEST(Permission, UidNotInAllowedUsersIsRefusedByTheDaemonsPolicy) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to nobody";
  Bus bus(kServices);
  // Open the path to the socket for nobody, so that the daemon's policy decides.
  ASSERT_EQ(::chmod(bus.runtime_dir().parent_path().c_str(), 0711), 0);
  ASSERT_EQ(::chmod(bus.runtime_dir().c_str(), 0711), 0);
  ASSERT_EQ(::chmod(bus.paths().socket.c_str(), 0666), 0);
  Shared<ForeignAttempt> outcome;

  attempt_as(bus, become_nobody, "worker", *outcome);

  ASSERT_EQ(outcome->done.load(), 1);
  EXPECT_EQ(outcome->connected.load(), 0);
  EXPECT_EQ(outcome->code.load(), static_cast<int>(ErrorCode::permission_denied)) << outcome->message;
  EXPECT_NE(std::string(outcome->message).find("may not run service type 'worker'"), std::string::npos)
      << outcome->message;
  EXPECT_NE(bus.daemon_log().find("refused pid"), std::string::npos);
  EXPECT_TRUE(bus.connect("worker")) << "root, who is listed, still may";
}

TEST(Permission, OtherUserIsRefusedAtTheControlSocketByDefault) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to nobody";
  Bus bus(kServices);
  ASSERT_EQ(::chmod(bus.runtime_dir().parent_path().c_str(), 0711), 0);  // the daemon's own modes stay
  Shared<ForeignAttempt> outcome;

  attempt_as(bus, become_nobody, "worker", *outcome);

  ASSERT_EQ(outcome->done.load(), 1);
  EXPECT_EQ(outcome->connected.load(), 0);
  EXPECT_EQ(outcome->code.load(), static_cast<int>(ErrorCode::permission_denied)) << outcome->message;
  EXPECT_NE(std::string(outcome->message).find("you may not connect"), std::string::npos) << outcome->message;
  EXPECT_EQ(bus.daemon_log().find("refused pid"), std::string::npos) << "the daemon never heard of it";
}

}  // namespace
}  // namespace exobus::integration
