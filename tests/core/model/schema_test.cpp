#include "exobus/schema.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace exobus {
namespace {

constexpr const char* kUserCreate = R"({
    "type": "object",
    "required": ["name", "email"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "email": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}}
    },
    "additionalProperties": false
})";

Schema user_create_schema() {
  auto schema = Schema::compile(kUserCreate, "schema for 'user.create'");
  EXPECT_TRUE(schema.ok()) << schema.error().message;
  return std::move(schema).value();
}

TEST(Schema, ConformingPayloadIsAccepted) {
  EXPECT_TRUE(user_create_schema().validate(R"({"name": "Jean-Luc", "email": "jl@enterprise"})").ok());
}

TEST(Schema, PatternStackingQuantifiersIsRefusedAtCompile) {
  // Would overflow the stack of every validating process in RapidJSON's regex engine.
  const std::string stacked = "[[[z]" + std::string(40, '+') + std::string(200, '*') + "$";
  const auto schema = Schema::compile(R"({"type": "string", "pattern": ")" + stacked + R"("})", "schema for 'x'");
  ASSERT_FALSE(schema.ok());
  EXPECT_EQ(schema.error().code, ErrorCode::config_error);
  EXPECT_NE(schema.error().message.find("repeats a repetition"), std::string::npos) << schema.error().message;
}

TEST(Schema, PatternWithAnEmptyAlternativeIsRefusedAtCompile) {
  // RapidJSON's regex parser pops a missing operand on these (a heap overflow).
  for (const char* pattern : {"^a||b$", "(|a)", "a|", "^|a", "()", "*a", "(+a)", "-az|Z^?]*$+$", "a$b", "a{860042222}",
                              "(a{100}){100}", "a{3", "(a*", "([^a-&z]*$", "a)", "(a))"}) {
    const auto schema = Schema::compile(std::string(R"({"pattern": ")") + pattern + R"("})", "s");
    EXPECT_FALSE(schema.ok()) << pattern;
  }
  for (const char* pattern : {"^a|b$", "(a|b)c", "^$", "", "^(a)?$", "x(y(z)|w)", "^[0-9]{3}-[0-9]{2,4}$"}) {
    const auto schema = Schema::compile(std::string(R"({"pattern": ")") + pattern + R"("})", "s");
    EXPECT_TRUE(schema.ok()) << pattern << ": " << schema.error().message;
  }
}

TEST(Schema, PatternPropertiesKeysAreCheckedToo) {
  const auto schema = Schema::compile(R"({"patternProperties": {"^a**$": {}}})", "schema for 'x'");
  ASSERT_FALSE(schema.ok());
  EXPECT_EQ(schema.error().code, ErrorCode::config_error);
}

TEST(Schema, OrdinaryPatternsStillWork) {
  const auto schema = Schema::compile(R"({"type": "string", "pattern": "^[a-z+*]+@[^@ ]{1,3}(x|y)?$"})", "s");
  ASSERT_TRUE(schema.ok()) << schema.error().message;
  EXPECT_TRUE(schema.value().validate(R"("ab+@xyzx")").ok());
  EXPECT_FALSE(schema.value().validate(R"("AB@x")").ok());
}

TEST(Schema, ViolationNamesThePayloadPathAndKeyword) {
  const auto result = user_create_schema().validate(R"({"name": "Jean-Luc", "email": 7})");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::schema_violation);
  EXPECT_NE(result.error().message.find("'/email'"), std::string::npos) << result.error().message;
  EXPECT_NE(result.error().message.find("'type'"), std::string::npos) << result.error().message;
  EXPECT_NE(result.error().message.find("schema for 'user.create'"), std::string::npos);
}

TEST(Schema, ViolationInsideArrayNamesTheElement) {
  const auto result = user_create_schema().validate(R"({"name": "a", "email": "b", "tags": ["x", 3]})");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("'/tags/1'"), std::string::npos) << result.error().message;
}

TEST(Schema, MissingRequiredPropertyIsReportedAtTheRoot) {
  const auto result = user_create_schema().validate(R"({"name": "Jean-Luc"})");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::schema_violation);
  EXPECT_NE(result.error().message.find("the document root"), std::string::npos) << result.error().message;
  EXPECT_NE(result.error().message.find("'required'"), std::string::npos) << result.error().message;
}

TEST(Schema, EmptyPayloadIsCheckedAsNull) {
  const auto result = user_create_schema().validate("");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::schema_violation);
  const auto optional = Schema::compile(R"({"type": ["object", "null"]})", "optional payload");
  ASSERT_TRUE(optional.ok());
  EXPECT_TRUE(optional->validate("").ok());
}

TEST(Schema, MalformedPayloadIsReportedAsMalformedNotViolation) {
  const auto result = user_create_schema().validate(R"({"name": )");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::malformed_json);
  EXPECT_NE(result.error().message.find("byte offset"), std::string::npos);
}

TEST(Schema, SchemaThatIsNotJsonIsConfigError) {
  const auto result = Schema::compile(R"({"type": )", "schema for 'x' (users/config.yml:4)");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::config_error);
  EXPECT_NE(result.error().message.find("users/config.yml:4"), std::string::npos);
  EXPECT_NE(result.error().message.find("not valid JSON"), std::string::npos);
}

TEST(Schema, SchemaWithUnknownTypeIsConfigError) {
  const auto result = Schema::compile(R"({"type": "strng"})", "schema for 'x'");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::config_error);
  EXPECT_NE(result.error().message.find("not a valid JSON Schema"), std::string::npos) << result.error().message;
  EXPECT_NE(result.error().message.find("'/type'"), std::string::npos) << result.error().message;
}

TEST(Schema, SchemaThatIsNotAnObjectIsConfigError) {
  const auto result = Schema::compile("[1, 2]", "schema for 'x'");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::config_error);
}

TEST(Schema, SchemaWithNegativeLengthIsConfigError) {
  const auto result = Schema::compile(R"({"type": "string", "minLength": -1})", "schema for 'x'");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::config_error);
  EXPECT_NE(result.error().message.find("'/minLength'"), std::string::npos) << result.error().message;
}

TEST(Schema, ReferenceCyclesAreRefusedAtCompile) {
  // RapidJSON follows a reference to a reference at once, recursively: these overflowed
  // the stack of the process compiling them (fuzz finding, kept in corpus/schema).
  for (const char* text : {R"({"$ref": "#"})", R"({"$ref": "#", "items": {"$ref": "#/dens:n"}})",
                           R"({"$ref": "#/items", "items": {"$ref": "#"}})",
                           R"({"definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}},
                                 "properties": {"x": {"$ref": "#/definitions/a"}}})"}) {
    const auto schema = Schema::compile(text, "schema for 'x'");
    ASSERT_FALSE(schema.ok()) << text;
    EXPECT_EQ(schema.error().code, ErrorCode::config_error);
    EXPECT_NE(schema.error().message.find("'$ref'"), std::string::npos) << schema.error().message;
  }
}

TEST(Schema, DanglingAndRemoteReferencesAreRefusedAtCompile) {
  // RapidJSON would ignore both and so accept every payload.
  const auto dangling = Schema::compile(R"({"items": {"$ref": "#/definitions/missing"}})", "schema for 'x'");
  ASSERT_FALSE(dangling.ok());
  EXPECT_NE(dangling.error().message.find("points at nothing"), std::string::npos) << dangling.error().message;
  // A target that is no object: RapidJSON read it as one (a fuzz finding).
  const auto not_a_schema = Schema::compile(R"({"": "array", "x": {"$ref": "#/"}})", "schema for 'x'");
  ASSERT_FALSE(not_a_schema.ok());
  EXPECT_NE(not_a_schema.error().message.find("not a schema"), std::string::npos) << not_a_schema.error().message;
  const auto remote = Schema::compile(R"({"$ref": "http://example.com/user.json"})", "schema for 'x'");
  ASSERT_FALSE(remote.ok());
  EXPECT_NE(remote.error().message.find("not local"), std::string::npos) << remote.error().message;
}

TEST(Schema, RecursiveSchemasThroughDefinitionsStillWork) {
  const auto tree = Schema::compile(R"({
        "definitions": {
            "node": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string"},
                                    "children": {"type": "array", "items": {"$ref": "#/definitions/node"}}}},
            "alias": {"$ref": "#/definitions/node"}
        },
        "$ref": "#/definitions/alias"
    })",
                                    "schema for 'x'");
  ASSERT_TRUE(tree.ok()) << tree.error().message;
  EXPECT_TRUE(tree->validate(R"({"name": "a", "children": [{"name": "b", "children": []}]})").ok());
  EXPECT_EQ(tree->validate(R"({"name": "a", "children": [{"children": []}]})").error().code,
            ErrorCode::schema_violation);
}

TEST(Schema, ValuesOfEnumAndDefaultAreCheckedLikeSchemas) {
  // RapidJSON compiles every object of the document as a schema, these included.
  EXPECT_FALSE(Schema::compile(R"({"enum": [{"pattern": "a**"}]})", "s").ok());
  EXPECT_FALSE(Schema::compile(R"({"default": {"$ref": "#/default"}})", "s").ok());
  // Read as an object whatever it is (a fuzz finding: a huge allocation from a string).
  const auto not_an_object = Schema::compile(R"({"x": {"patternProperties": "number"}})", "s");
  ASSERT_FALSE(not_an_object.ok());
  EXPECT_NE(not_an_object.error().message.find("'patternProperties' is not an object"), std::string::npos)
      << not_an_object.error().message;
}

TEST(Schema, DuplicateNamesInAnObjectAreRefusedAtCompile) {
  // RapidJSON left a validator unset for the second "s" (a fuzz finding under UBSan).
  const auto schema = Schema::compile(R"({"dependencies": {"s": {"type": "number"}, "s": {"type": "string"}}})", "s");
  ASSERT_FALSE(schema.ok());
  EXPECT_NE(schema.error().message.find("names 's' twice"), std::string::npos) << schema.error().message;
}

TEST(Schema, EmptyDependenciesConstrainNothing) {
  // RapidJSON allocates zero bytes of validator state for it (a fuzz finding under UBSan).
  const auto schema = Schema::compile(R"({"type": "object", "dependencies": {}})", "s");
  ASSERT_TRUE(schema.ok()) << schema.error().message;
  EXPECT_TRUE(schema->validate(R"({"a": 1})").ok());
  EXPECT_EQ(schema->validate("[]").error().code, ErrorCode::schema_violation);
}

TEST(Schema, DeeplyNestedSchemaIsRefusedAtCompile) {
  // RapidJSON compiles a schema recursively, a level at a time.
  std::string text;
  for (int i = 0; i < 200; ++i) text += R"({"items": )";
  text += "{}" + std::string(200, '}');
  const auto schema = Schema::compile(text, "schema for 'x'");
  ASSERT_FALSE(schema.ok());
  EXPECT_NE(schema.error().message.find("nests deeper"), std::string::npos) << schema.error().message;
}

TEST(Schema, SchemaOfMoreThanTenThousandObjectsIsRefusedBeforeRapidJsonCompilesIt) {
  // RapidJSON compiles every object (here under `default`) in time quadratic in their
  // number: a 4 MiB schema file of {} would take hours.
  std::string text = R"({"default": [{})";
  for (int i = 0; i < 300'000; ++i) text += ",{}";
  text += "]}";

  const auto schema = Schema::compile(text, "schema for 'x'");

  ASSERT_FALSE(schema.ok());
  EXPECT_EQ(schema.error().code, ErrorCode::config_error);
  EXPECT_NE(schema.error().message.find("more than 10000 objects"), std::string::npos) << schema.error().message;
}

TEST(Schema, SchemaOfTenThousandObjectsCompiles) {
  std::string text = R"({"default": [)";
  for (int i = 0; i < 9'999; ++i) text += i == 0 ? "{}" : ",{}";
  text += "]}";

  const auto schema = Schema::compile(text, "schema for 'x'");

  ASSERT_TRUE(schema.ok()) << schema.error().message;
}

TEST(Schema, PayloadNestingIsBoundedAndNeverRecursedInto) {
  const auto any_array = Schema::compile(R"({"type": "array"})", "schema for 'x'");
  ASSERT_TRUE(any_array.ok());
  const auto nested = [](std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_TRUE(any_array->validate(nested(1000)).ok());
  // Far past what a recursive walk survives, and quadratic in RapidJSON's validator.
  const std::string deep = nested(2'000'000);
  const auto refused = any_array->validate(deep);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::schema_violation);
  EXPECT_NE(refused.error().message.find("nests deeper than 1000"), std::string::npos) << refused.error().message;
  EXPECT_EQ(any_array->validate(deep.substr(1)).error().code, ErrorCode::malformed_json);
}

TEST(Schema, MalformedTextAfterAViolationIsReportedAsMalformed) {
  const auto result = user_create_schema().validate(R"({"name": "a", "email": 7, )");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::malformed_json) << result.error().message;
}

TEST(Schema, CopiesShareOneCompiledSchemaAcrossThreads) {
  const Schema schema = user_create_schema();
  constexpr int kThreads = 4;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([copy = schema, &failures, t] {
      for (int i = 0; i < 2000; ++i) {
        const bool good = i % 2 == 0;
        const auto result = copy.validate(good ? R"({"name": "a", "email": "b"})" : R"({"name": ""})");
        if (result.ok() != good) ++failures[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace exobus
