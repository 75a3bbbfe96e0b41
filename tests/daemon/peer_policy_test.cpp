// Which peers PeerPolicy lets register, and what it says to the others.

#include "exobus/daemon/peer_policy.hpp"

#include <gtest/gtest.h>

namespace exobus::daemon {
namespace {

using Code = ErrorCode;

constexpr uid_t kOwner = 1000;
constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

PeerCredentials peer(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
  groups.push_back(gid);
  return PeerCredentials{1234, uid, gid, std::move(groups)};
}

TEST(PeerPolicy, EmptyListsAllowOnlyOwnerAndRoot) {
  const PeerPolicy policy = PeerPolicy::create({}, {}, kOwner).value();
  EXPECT_TRUE(policy.allows(peer(kOwner, kOwner)));
  EXPECT_TRUE(policy.allows(peer(0, 0)));
  EXPECT_FALSE(policy.allows(peer(kNobody, kNogroup)));
}

TEST(PeerPolicy, ListedUserByNameIsAllowed) {
  const PeerPolicy policy = PeerPolicy::create({"nobody"}, {}, kOwner).value();
  EXPECT_TRUE(policy.allows(peer(kNobody, kNogroup)));
  EXPECT_FALSE(policy.allows(peer(4321, 4321)));
}

TEST(PeerPolicy, ListedUserByUidIsAllowed) {
  const PeerPolicy policy = PeerPolicy::create({"4321"}, {}, kOwner).value();
  EXPECT_TRUE(policy.allows(peer(4321, 4321)));
}

TEST(PeerPolicy, MemberOfListedGroupIsAllowedThroughSupplementaryGroups) {
  const PeerPolicy policy = PeerPolicy::create({}, {"nogroup"}, kOwner).value();
  EXPECT_TRUE(policy.allows(peer(4321, 4321, {kNogroup})));
  EXPECT_TRUE(policy.allows(peer(4321, kNogroup)));
  EXPECT_FALSE(policy.allows(peer(4321, 4321, {4322})));
}

TEST(PeerPolicy, UnknownNamesAreRefusedWhenThePolicyIsBuilt) {
  const Result<PeerPolicy> users = PeerPolicy::create({"no-such-user-xyz"}, {}, kOwner);
  ASSERT_FALSE(users.ok());
  EXPECT_EQ(users.error().code, Code::refused);
  EXPECT_NE(users.error().message.find("'no-such-user-xyz'"), std::string::npos);
  EXPECT_FALSE(PeerPolicy::create({}, {"no-such-group-xyz"}, kOwner).ok());
}

TEST(PeerPolicy, RefusalNamesUserServiceTypeAndWhoIsAllowed) {
  const PeerPolicy policy = PeerPolicy::create({"4321"}, {"nogroup"}, 0).value();
  const Result<void> checked = policy.check(peer(kNobody, 4000), "users");
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.error().code, Code::permission_denied);
  const std::string& message = checked.error().message;
  EXPECT_NE(message.find("user 'nobody' (uid 65534) may not run service type 'users'"), std::string::npos) << message;
  EXPECT_NE(message.find("allowed: the bus owner root (uid 0)"), std::string::npos) << message;
  EXPECT_NE(message.find("users 4321"), std::string::npos) << message;
  EXPECT_NE(message.find("groups nogroup (gid 65534)"), std::string::npos) << message;
  EXPECT_NE(message.find("set allowed-users"), std::string::npos) << message;
}

TEST(PeerPolicy, AllowedPeerPassesTheCheck) {
  const PeerPolicy policy = PeerPolicy::create({}, {}, kOwner).value();
  EXPECT_TRUE(policy.check(peer(kOwner, kOwner), "users").ok());
}

}  // namespace
}  // namespace exobus::daemon
