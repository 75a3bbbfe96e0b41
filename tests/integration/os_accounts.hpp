#pragma once
// Real operating-system accounts for tests run as root: a group and two users created with
// groupadd/useradd for the lifetime of an Accounts object (and deleted after it), and a
// forked child's irrevocable switch to one of them.
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace exobus::integration {

// Runs a command of the system's account tools; true if it exited 0.
inline bool run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()) == 0; }

// A group and two users that exist for the lifetime of this object: `member` belongs to
// `group`, `outsider` does not.
class Accounts {
 public:
  Accounts() {
    const std::string suffix = std::to_string(::getpid());
    group = "exbg" + suffix;
    member = "exbm" + suffix;
    outsider = "exbo" + suffix;
    created_ = run("groupadd " + group) &&
               run("useradd --no-create-home --shell /usr/sbin/nologin -G " + group + " " + member) &&
               run("useradd --no-create-home --shell /usr/sbin/nologin " + outsider);
    if (created_) gid = ::getgrnam(group.c_str())->gr_gid;
  }
  Accounts(const Accounts&) = delete;
  Accounts& operator=(const Accounts&) = delete;
  ~Accounts() {
    run("userdel " + member);
    run("userdel " + outsider);
    run("groupdel " + group);
  }

  bool created() const { return created_; }

  std::string group, member, outsider;
  gid_t gid = 0;

 private:
  bool created_ = false;
};

// In a forked child: becomes `user` with its groups from the group database, irrevocably.
inline bool become(const std::string& user) {
  const passwd* entry = ::getpwnam(user.c_str());
  return entry != nullptr && ::initgroups(user.c_str(), entry->pw_gid) == 0 && ::setgid(entry->pw_gid) == 0 &&
         ::setuid(entry->pw_uid) == 0 && ::setuid(0) == -1;
}

}  // namespace exobus::integration
