#pragma once

// Reading one YAML configuration file with errors that point into it. Every error is
// ErrorCode::config_error and starts with "file:line:column:", the form editors jump to.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>

#include "exobus/error.hpp"

namespace exobus::detail {

// Bounds on what one configuration file may cost to read, whoever wrote it: `exobus lint`,
// exobusd (at start and at every SIGHUP) and every instance at registration load it.
//
// A file is read whole, so its size bounds the memory of reading it; a schema file (.json)
// that a configuration names is bounded the same way.
inline constexpr std::uintmax_t kMaxConfigFileBytes = std::uintmax_t{4} << 20;  // 4 MiB
// yaml-cpp keeps an alias as a second reference to its anchor's node, so parsing is linear
// in the file, but every walk of the tree (the checks, an inline schema turned into JSON)
// visits an aliased node once per reference: nine anchors of nine aliases each are 9^9
// nodes from a few hundred bytes ("billion laughs"). So the document is counted, aliases
// expanded, before its tree is built, and refused beyond these: nodes (scalars, keys and
// collections, an alias counting as all the nodes it stands for), and levels of nesting (an
// alias of a deep node placed deep inside another one nests the two depths, so a chain of
// aliases would otherwise nest far beyond what yaml-cpp's parser allows, and overflow the
// stack of whatever walks it). An inline schema nests at most 128 levels anyway.
//
// A real configuration has hundreds of nodes, a large one with big inline schemas some
// thousands. Every node costs a few hundred bytes in yaml-cpp's tree and again as JSON:
// 1,000,000 nodes took `exobus lint` 500 MB and 3.6 s, so the bound is a tenth of that, a
// cost every instance (which loads the file when it registers) can afford.
inline constexpr std::uint64_t kMaxConfigNodes = 100'000;
inline constexpr std::uint32_t kMaxConfigDepth = 256;

// The whole text of a configuration file (YAML or a JSON schema); an error naming the file
// when it cannot be read or is larger than kMaxConfigFileBytes.
Result<std::string> read_config_file(const std::filesystem::path& file);

class YamlReader {
 public:
  // Parses the whole file; a missing file, one larger than kMaxConfigFileBytes, a YAML syntax
  // error, or a document beyond kMaxConfigNodes or kMaxConfigDepth is the returned error.
  static Result<YamlReader> open(const std::filesystem::path& file);

  const std::filesystem::path& file() const noexcept { return file_; }
  const YAML::Node& root() const noexcept { return root_; }

  Error error(const YAML::Node& at, const std::string& what) const;
  Error error(const YAML::Mark& at, const std::string& what) const;

  // Ok if `node` is a mapping whose keys are all scalars from `allowed`, each once.
  // An unknown key gets a did-you-mean when an allowed key is close to it.
  Result<void> check_mapping(const YAML::Node& node, std::string_view what,
                             std::initializer_list<std::string_view> allowed) const;
  // Ok if `node` is a mapping without repeated keys (the keys are free-form names).
  Result<void> check_unique_keys(const YAML::Node& node, std::string_view what) const;

  Result<std::string> scalar(const YAML::Node& node, std::string_view what) const;
  // A whole number in [min, max], optionally a power of two.
  Result<std::uint32_t> number(const YAML::Node& node, std::string_view what, std::uint32_t min, std::uint32_t max,
                               bool power_of_two = false) const;
  // true or false, unquoted.
  Result<bool> boolean(const YAML::Node& node, std::string_view what) const;

 private:
  YamlReader(std::filesystem::path file, YAML::Node root) : file_(std::move(file)), root_(std::move(root)) {}

  std::filesystem::path file_;
  YAML::Node root_;
};

// "file:line" of a node, for labels such as a schema's origin.
std::string location(const std::filesystem::path& file, const YAML::Mark& mark);

// A YAML mapping/sequence/scalar tree as JSON text. Plain scalars are typed as YAML 1.2's
// core schema types them (null, true/false, integers, floats, else strings); quoted scalars
// are always strings, so "1" stays a string.
std::string yaml_to_json(const YAML::Node& node);

}  // namespace exobus::detail
