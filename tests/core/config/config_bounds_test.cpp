// What a configuration file may cost to read: its size (4 MiB, schema files included), the
// nodes it expands to with its YAML aliases (100,000) and how deep those nest (256
// levels). A file beyond a bound is a config_error naming the file and, where there is one,
// the line; it is refused before any tree is walked, so cheaply.
#include <sys/resource.h>

#include <gtest/gtest.h>

#include <string>

#include "config_files.hpp"
#include "exobus/config.hpp"

namespace exobus {
namespace {

class ConfigBounds : public testing::ConfigFiles {
 protected:
  Result<ApplicationConfig> load(std::string_view application_yml) {
    return load_application_config(write("application.yml", application_yml));
  }

  // A config_error whose message starts with `prefix` and mentions `text`.
  static void expect_error(const Result<ApplicationConfig>& result, const std::string& prefix,
                           std::string_view text) {
    ASSERT_FALSE(result.ok()) << "loaded without error";
    EXPECT_EQ(result.error().code, ErrorCode::config_error);
    const std::string& message = result.error().message;
    EXPECT_EQ(message.rfind(prefix, 0), 0u) << message;
    EXPECT_NE(message.find(text), std::string::npos) << message;
  }

  std::string at_line(int line) const { return (dir() / "application.yml").string() + ":" + std::to_string(line) + ":"; }
};

// The peak resident memory of this process so far, in KiB.
long peak_rss_kib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// Nine anchors of nine aliases each: 9^9 nodes from 700 bytes. Line 13 is where the
// count passes 100,000 (the first alias of f).
constexpr const char* kAliasBomb = R"(name: bomb
services:
  s:
    config:
      receives: [m]
      schemas:
        m:
          a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
          b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
          c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
          d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
          e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
          f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
          g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
          h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
          i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
)";

TEST_F(ConfigBounds, AnAliasBombIsRefusedAtTheLineWhereItPassesTheNodeBoundWithoutGrowingMemory) {
  const long before = peak_rss_kib();

  const auto config = load(kAliasBomb);

  expect_error(config, at_line(13), "the configuration expands to more than 100000 nodes (YAML aliases?)");
  EXPECT_LT(peak_rss_kib() - before, 64 * 1024) << "KiB of peak memory grown while refusing the bomb";
}

TEST_F(ConfigBounds, AnAliasBombInAServiceConfigYmlNamesThatFile) {
  write("payroll/config.yml", std::string(kAliasBomb).substr(std::string(kAliasBomb).find("      receives")));
  const auto config = load("name: app\nservices:\n  payroll:\n    location: ./payroll\n");

  expect_error(config, (dir() / "./payroll" / "config.yml").string() + ":9:", "expands to more than 100000 nodes");
}

TEST_F(ConfigBounds, AliasesWithinTheBoundsLoad) {
  const auto config = load(R"(name: shared
services:
  web: &entry
    config:
      receives: [m]
      schemas:
        m:
          type: object
          definitions:
            a: &a { type: array, items: { enum: [1, 2, 3, 4, 5, 6, 7, 8, 9] } }
            b: &b { type: array, items: [*a, *a, *a, *a, *a, *a, *a, *a, *a] }
            c: { type: array, items: [*b, *b, *b, *b, *b, *b, *b, *b, *b] }
  worker: *entry
)");

  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->services.size(), 2u);
}

TEST_F(ConfigBounds, AnAliasInsideTheNodeItNamesIsRefused) {
  const auto config = load(R"(name: cycle
services:
  s:
    config:
      receives: [m]
      schemas:
        m: &a { properties: { x: *a } }
)");

  expect_error(config, at_line(7), "an alias inside the node its anchor names");
}

TEST_F(ConfigBounds, AliasesThatNestDeeperThanTheBoundAreRefused) {
  // Each anchor nests 200 levels, within the bound; the alias of the first inside the
  // second nests 400.
  const std::string deep = std::string(200, '[') + "x" + std::string(200, ']');
  const std::string deeper = std::string(200, '[') + "*a" + std::string(200, ']');

  const auto config = load("name: deep\nservices:\n  s:\n    config:\n      receives: [m]\n      schemas:\n        m:\n"
                           "          a: &a " + deep + "\n          b: " + deeper + "\n");

  expect_error(config, at_line(9), "the configuration nests deeper than 256 levels");
}

TEST_F(ConfigBounds, AFileLargerThan4MiBIsRefused) {
  std::string text = "name: big\nservices:\n  s:\n    config: { receives: [m] }\n";
  while (text.size() <= (4u << 20)) text += "# " + std::string(77, 'x') + "\n";

  const auto config = load(text);

  expect_error(config, (dir() / "application.yml").string() + ": larger than 4194304 bytes", "4 MiB");
}

TEST_F(ConfigBounds, AFileOfExactly4MiBLoads) {
  std::string text = "name: big\nservices:\n  s:\n    config: { receives: [m] }\n";
  text += "#" + std::string((4u << 20) - text.size() - 2, 'x') + "\n";
  ASSERT_EQ(text.size(), 4u << 20);

  const auto config = load(text);

  ASSERT_TRUE(config.ok()) << config.error().message;
}

TEST_F(ConfigBounds, ASchemaFileLargerThan4MiBIsRefusedAtTheLineThatNamesIt) {
  write("big.json", "{\"description\": \"" + std::string(4u << 20, 'x') + "\"}");

  const auto config = load(R"(name: app
services:
  s:
    config:
      receives: [m]
      schemas:
        m: big.json
)");

  expect_error(config, at_line(7), (dir() / "big.json").string() + ": larger than 4194304 bytes");
}

}  // namespace
}  // namespace exobus
