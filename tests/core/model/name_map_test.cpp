// The name tables' hash: every byte of a name counts, and lookups by string_view work.
#include "exobus/name_map.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace exobus {
namespace {

TEST(NameHash, EveryByteOfTheNameChangesTheHash) {
  const NameHash hash;
  for (std::size_t length = 1; length <= 40; ++length) {
    const std::string base(length, 'a');
    std::set<std::size_t> seen{hash(base)};
    for (std::size_t at = 0; at < length; ++at) {
      std::string changed = base;
      changed[at] = 'b';
      EXPECT_TRUE(seen.insert(hash(changed)).second) << "length " << length << ", byte " << at;
    }
  }
}

TEST(NameHash, LengthCountsEvenForZeroBytes) {
  const NameHash hash;
  EXPECT_NE(hash(std::string_view("\0", 1)), hash(std::string_view("\0\0", 2)));
  EXPECT_NE(hash(""), hash(std::string_view("\0", 1)));
}

TEST(NameMap, FindsByStringViewWithoutBuildingAString) {
  NameMap<int> map{{"user.create", 1}, {"user.create.ok", 2}, {"a-rather-long.message.name.of.forty", 3}};
  EXPECT_EQ(map.find(std::string_view("user.create"))->second, 1);
  EXPECT_EQ(map.find(std::string_view("user.create.ok"))->second, 2);
  EXPECT_EQ(map.find(std::string_view("a-rather-long.message.name.of.forty"))->second, 3);
  EXPECT_EQ(map.find(std::string_view("user.creat")), map.end());
  const NameSet set{"billing", "shipping"};
  EXPECT_TRUE(set.contains(std::string_view("billing")));
  EXPECT_FALSE(set.contains(std::string_view("Billing")));
}

}  // namespace
}  // namespace exobus
