#include "exobus/error.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <variant>

namespace exobus {
namespace {

TEST(Result, HoldsValueWhenBuiltFromValue) {
  Result<int> result = 42;
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(static_cast<bool>(result));
  EXPECT_EQ(result.value(), 42);
}

TEST(Result, HoldsErrorWhenBuiltFromError) {
  Result<int> result = Error{ErrorCode::timeout, "no reply within 5 s"};
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::timeout);
  EXPECT_EQ(result.error().message, "no reply within 5 s");
}

TEST(Result, ValueOfFailedResultThrowsInsteadOfReadingGarbage) {
  Result<int> result = Error{ErrorCode::closed, "closed"};
  EXPECT_THROW((void)result.value(), std::bad_variant_access);
}

TEST(Result, MovesOutMoveOnlyValues) {
  Result<std::unique_ptr<int>> result = std::make_unique<int>(7);
  std::unique_ptr<int> taken = std::move(result).value();
  EXPECT_EQ(*taken, 7);
}

TEST(ResultVoid, DefaultIsSuccess) {
  Result<void> result;
  EXPECT_TRUE(result.ok());
  EXPECT_THROW((void)result.error(), std::bad_variant_access);
}

TEST(ResultVoid, CarriesError) {
  Result<void> result = Error{ErrorCode::queue_full, "full"};
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::queue_full);
}

TEST(ErrorCodeText, EveryCodeHasItsOwnName) {
  EXPECT_EQ(to_string(ErrorCode::invalid_name), "invalid_name");
  EXPECT_EQ(to_string(ErrorCode::not_declared), "not_declared");
  EXPECT_EQ(to_string(ErrorCode::internal), "internal");
  std::set<std::string_view> names;
  for (int code = static_cast<int>(ErrorCode::invalid_name); code <= static_cast<int>(ErrorCode::internal); ++code) {
    names.insert(to_string(static_cast<ErrorCode>(code)));
  }
  EXPECT_EQ(names.size(), static_cast<std::size_t>(ErrorCode::internal));
  EXPECT_EQ(names.count("unknown_error_code"), 0u);
}

TEST(ErrorCodeText, ValueOutsideEnumIsNamedUnknown) {
  EXPECT_EQ(to_string(static_cast<ErrorCode>(9999)), "unknown_error_code");
}

}  // namespace
}  // namespace exobus
