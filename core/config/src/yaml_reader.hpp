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

class YamlReader {
 public:
  // Parses the whole file; a missing file or a YAML syntax error is the returned error.
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
