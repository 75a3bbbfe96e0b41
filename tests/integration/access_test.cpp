// Access with real operating-system accounts: the test creates a group and two users with
// groupadd/useradd (and deletes them afterwards), runs exobusd for a bus owned by that
// group, and acts as each user in a forked child that drops root for good.
//
// - the member (in the bus group) runs an instance of a type its group is allowed, and
//   receives a message over the bus; a type it is not allowed is refused by the daemon;
// - the outsider reaches neither the control socket nor the daemon's descriptors (the
//   kernel refuses); the bus's memory has no name anywhere to open;
// - the socket and the runtime directory carry exactly the group and modes `segment-mode`
//   configures, whatever the daemon's umask;
// - the CLI obeys the same per-type policy: the member can neither list nor requeue the
//   dead letters of a type it may not run, nor `exobus send --as` it; root (the owner) can.
#include <gtest/gtest.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

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

// What `exobus ARGS...` printed (stdout and stderr together) and its wait status.
struct CliRun {
  int status = -1;
  std::string output;
  bool exited_with(int code) const { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
};

// Runs the exobus CLI against `bus` in a forked child, as `user` (root when empty).
CliRun run_cli(Bus& bus, const std::string& user, std::vector<std::string> args) {
  args.insert(args.begin(), EXOBUS_CLI_PATH);
  for (const std::string& option : {std::string("--bus"), bus.name(), std::string("--runtime-dir"),
                                    bus.runtime_dir().string()}) {
    args.push_back(option);
  }
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return {};
  const pid_t child = bus.spawn([&] {
    if (!user.empty() && !become(user)) return 125;
    if (::dup2(out[1], STDOUT_FILENO) == -1 || ::dup2(out[1], STDERR_FILENO) == -1) return 126;
    ::execv(EXOBUS_CLI_PATH, argv.data());
    return 127;
  });
  ::close(out[1]);
  CliRun run;
  char buffer[4096];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) run.output.append(buffer, static_cast<std::size_t>(n));
  ::close(out[0]);
  run.status = bus.wait_child(child);
  return run;
}

// `payroll` has no allowed-users nor allowed-groups: only the owner (root here) may run it.
class AccessToPayroll : public Access {
 protected:
  std::string payroll_services() const {
    return R"(
      web:
        config: { sends: [job.run, pay.run] }
      worker:
        config: { receives: [job.run], allowed-groups: [)" + accounts_.group + R"(] }
      payroll:
        config: { receives: [pay.run] }
    )";
  }

  // A payroll instance (root, in a child) that rejects what it gets, and one pay.run sent
  // by root with the CLI: payroll then holds one dead letter.
  void dead_letter_for_payroll(Bus& bus) {
    bus.spawn_service("payroll", *payroll_, [](Service& payroll) {
      payroll.on("pay.run", [](Delivery& delivery) { (void)delivery.reject(); });
    });
    ASSERT_TRUE(Bus::ready(*payroll_));
    const CliRun sent = run_cli(bus, "", {"send", "pay.run", numbered(42), "--as", "web"});
    ASSERT_TRUE(sent.exited_with(0)) << sent.output;
    ASSERT_TRUE(eventually([&] { return bus.type_status("payroll", "dead_lettered") == 1; }));
  }

  Shared<Ledger> payroll_;
};

TEST_F(AccessToPayroll, GroupMemberCannotListNorRequeueTheDeadLettersOfATypeItMayNotRun) {
  Bus bus(payroll_services(), bus_section());
  open_parent(bus);
  dead_letter_for_payroll(bus);

  const CliRun listed = run_cli(bus, accounts_.member, {"dlq", "list", "--type", "payroll"});
  const CliRun requeued = run_cli(bus, accounts_.member, {"dlq", "requeue", "--type", "payroll"});

  for (const auto& [run, verb] : {std::pair{&listed, "list"}, std::pair{&requeued, "requeue"}}) {
    EXPECT_TRUE(run->exited_with(1)) << run->output;
    EXPECT_NE(run->output.find("permission_denied"), std::string::npos) << run->output;
    EXPECT_NE(run->output.find(std::string("cannot ") + verb + " the dead letters of service type 'payroll'"),
              std::string::npos)
        << run->output;
    EXPECT_NE(run->output.find("user '" + accounts_.member + "'"), std::string::npos) << run->output;
    EXPECT_EQ(run->output.find(numbered(42)), std::string::npos) << "the payload leaked: " << run->output;
  }
  EXPECT_EQ(bus.type_status("payroll", "dead_lettered"), 1u) << "the refused requeue moved the dead letter";
  EXPECT_NE(bus.daemon_log().find("refused dlq requeue of 'payroll'"), std::string::npos);
}

TEST_F(AccessToPayroll, GroupMemberCannotSendAsATypeItMayNotRun) {
  Bus bus(payroll_services(), bus_section());
  open_parent(bus);

  // `send --as T` registers an instance of T, so registration's policy decides.
  const CliRun sent = run_cli(bus, accounts_.member, {"send", "pay.run", numbered(1), "--as", "payroll"});

  EXPECT_TRUE(sent.exited_with(1)) << sent.output;
  EXPECT_NE(sent.output.find("permission_denied"), std::string::npos) << sent.output;
  EXPECT_NE(sent.output.find("user '" + accounts_.member + "'"), std::string::npos) << sent.output;
  EXPECT_NE(sent.output.find("may not run service type 'payroll'"), std::string::npos) << sent.output;
}

TEST_F(AccessToPayroll, GroupMemberListsTheDeadLettersOfATypeItsGroupMayRun) {
  Bus bus(payroll_services(), bus_section());
  open_parent(bus);

  const CliRun listed = run_cli(bus, accounts_.member, {"dlq", "list", "--type", "worker"});

  EXPECT_TRUE(listed.exited_with(0)) << listed.output;
  EXPECT_NE(listed.output.find("0 dead letters of 'worker'"), std::string::npos) << listed.output;
}

TEST_F(AccessToPayroll, TheOwnerListsAndRequeuesTheDeadLettersOfATypeWithoutAllowedUsers) {
  Bus bus(payroll_services(), bus_section());
  open_parent(bus);
  dead_letter_for_payroll(bus);

  const CliRun listed = run_cli(bus, "", {"dlq", "list", "--type", "payroll"});
  const CliRun requeued = run_cli(bus, "", {"dlq", "requeue", "--type", "payroll"});

  EXPECT_TRUE(listed.exited_with(0)) << listed.output;
  EXPECT_NE(listed.output.find("1 dead letters of 'payroll'"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find(numbered(42)), std::string::npos) << listed.output;
  EXPECT_TRUE(requeued.exited_with(0)) << requeued.output;
  EXPECT_NE(requeued.output.find("requeued 1 dead letters of 'payroll'"), std::string::npos) << requeued.output;
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
