// Access with real operating-system accounts: the test creates a group and two users with
// groupadd/useradd (and deletes them afterwards), runs exobusd for a bus owned by that
// group, and acts as each user in a forked child that drops root for good.
//
// - the member (in the bus group) runs an instance of a type its group is allowed, and
//   receives a message over the bus; a type it is not allowed is refused by the daemon;
// - the outsider reaches neither the control socket nor the daemon's descriptors (the
//   kernel refuses); the bus's memory has no name anywhere to open;
// - the socket and the runtime directory carry exactly the group and modes `segment-mode`
//   configures, whatever the daemon's umask.
#include <gtest/gtest.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "bus_fixture.hpp"
#include "os_accounts.hpp"

namespace exobus::integration {
namespace {

class Access : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to create users and switch to them";
    if (!accounts_.created()) GTEST_SKIP() << "groupadd/useradd are not available";
  }

  std::string bus_section() const { return "group: " + accounts_.group + "\n"; }

  std::string services() const {
    return R"(
      web:
        config: { sends: [job.run, audit.note] }
      worker:
        config: { receives: [job.run], allowed-groups: [)" + accounts_.group + R"(] }
      auditor:
        config: { receives: [audit.note], allowed-users: [root] }
    )";
  }

  // Opens the test's own directory (the parent of the runtime directory, 0700 from mkdtemp)
  // for other users: the bus's modes alone then decide.
  static void open_parent(const Bus& bus) {
    ASSERT_EQ(::chmod(bus.runtime_dir().parent_path().c_str(), 0711), 0);
  }

  // As `user`, connects an instance of `type` and tries to open the data segment.
  void attempt(Bus& bus, const std::string& user, const std::string& type, ForeignAttempt& outcome) {
    attempt_as(bus, [&] { return become(user); }, type, outcome);
  }

  Accounts accounts_;
};

TEST_F(Access, GroupMemberServesAnAllowedTypeOverTheBus) {
  Bus bus(services(), bus_section());
  open_parent(bus);
  Shared<Ledger> ledger;
  const std::string member = accounts_.member;
  const ServiceOptions options = bus.options("worker");
  bus.spawn([&] {
    if (!become(member)) return 3;
    Result<std::unique_ptr<Service>> worker = Service::connect(options);
    if (!worker) {
      ledger->failed.store(1);
      return 2;
    }
    worker.value()->on("job.run", [&](Delivery& delivery) { ledger->record(delivery.message()); });
    if (!worker.value()->start()) return 4;
    ledger->ready.store(1, std::memory_order_release);
    for (;;) ::pause();
  });
  ASSERT_TRUE(Bus::ready(*ledger)) << "the group member could not run 'worker'";
  auto web = bus.connect("web");
  ASSERT_TRUE(web);
  ASSERT_TRUE(web->send("job.run", numbered(7)));
  EXPECT_TRUE(eventually([&] { return ledger->saw(7); }));
}

TEST_F(Access, GroupMemberIsRefusedATypeItsGroupMayNotRun) {
  Bus bus(services(), bus_section());
  open_parent(bus);
  Shared<ForeignAttempt> attempted;

  attempt(bus, accounts_.member, "auditor", *attempted);

  ASSERT_EQ(attempted->done.load(), 1);
  EXPECT_EQ(attempted->open_errno.load(), EACCES) << "only the daemon grants the memory";
  EXPECT_EQ(attempted->connected.load(), 0);
  EXPECT_EQ(attempted->code.load(), static_cast<int>(ErrorCode::permission_denied)) << attempted->message;
  EXPECT_NE(std::string(attempted->message).find("may not run service type 'auditor'"), std::string::npos)
      << attempted->message;
  EXPECT_NE(bus.daemon_log().find("refused pid"), std::string::npos);
}

TEST_F(Access, OutsiderReachesNeitherTheDaemonNorTheSegment) {
  Bus bus(services(), bus_section());
  open_parent(bus);
  Shared<ForeignAttempt> attempted;

  attempt(bus, accounts_.outsider, "worker", *attempted);

  ASSERT_EQ(attempted->done.load(), 1);
  EXPECT_EQ(attempted->open_errno.load(), EACCES) << std::strerror(attempted->open_errno.load());
  EXPECT_EQ(attempted->connected.load(), 0);
  EXPECT_EQ(attempted->code.load(), static_cast<int>(ErrorCode::permission_denied)) << attempted->message;
  EXPECT_NE(std::string(attempted->message).find("you may not connect"), std::string::npos) << attempted->message;
  EXPECT_EQ(bus.daemon_log().find("refused pid"), std::string::npos) << "the daemon never heard of it";
}

struct Expected {
  mode_t socket_mode, runtime_dir_mode;
};

// Mode and group of a path; mode 0 if it does not exist.
std::pair<mode_t, gid_t> mode_and_group(const std::filesystem::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return {0, 0};
  return {info.st_mode & 07777, info.st_gid};
}

class AccessUnderUmask : public Access, public ::testing::WithParamInterface<mode_t> {};

TEST_P(AccessUnderUmask, SocketAndDirectoryHaveExactlyTheConfiguredModesAndTheMemoryNoName) {
  for (const auto& [segment_mode, expected] :
       {std::pair{"0660", Expected{0660, 0710}}, std::pair{"0640", Expected{0600, 0700}},
        std::pair{"0600", Expected{0600, 0700}}}) {
    SCOPED_TRACE(std::string("segment-mode ") + segment_mode);
    Bus bus(services(), bus_section() + "segment-mode: \"" + segment_mode + "\"\n", /*start=*/false);
    const mode_t previous = ::umask(GetParam());  // the daemon inherits it
    bus.start_daemon();
    ::umask(previous);

    for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
      EXPECT_EQ(entry.path().filename().string().find(bus.name()), std::string::npos)
          << entry.path() << ": the bus's memory must not be a file anyone could open";
    }
    EXPECT_EQ(mode_and_group(bus.paths().socket), std::pair(expected.socket_mode, accounts_.gid));
    EXPECT_EQ(mode_and_group(bus.runtime_dir()), std::pair(expected.runtime_dir_mode, accounts_.gid));
  }
}

INSTANTIATE_TEST_SUITE_P(Umasks, AccessUnderUmask, ::testing::Values(mode_t{0000}, mode_t{0077}),
                         [](const auto& info) { return "umask0" + std::to_string(info.param == 0 ? 0 : 77); });

TEST_F(Access, UnknownGroupStopsTheDaemonWithAClearError) {
  Bus bus(services(), "group: no-such-group-" + std::to_string(::getpid()) + "\n", /*start=*/false);
  const std::filesystem::path log = bus.runtime_dir().parent_path() / "exobusd.log";  // what daemon_log() reads
  const pid_t daemon = bus.spawn([&] {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd == -1 || ::dup2(fd, STDERR_FILENO) == -1) return 126;
    const std::string config = bus.config_file().string(), runtime = bus.runtime_dir().string();
    const char* argv[] = {EXOBUSD_PATH, "--config", config.c_str(), "--bus", bus.name().c_str(),
                          "--runtime-dir", runtime.c_str(), nullptr};
    ::execv(EXOBUSD_PATH, const_cast<char* const*>(argv));
    return 127;
  });
  const int status = bus.wait_child(daemon);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << "status " << status;
  EXPECT_NE(bus.daemon_log().find("is not a group on this host"), std::string::npos) << bus.daemon_log();
}

}  // namespace
}  // namespace exobus::integration
