#include "exobus/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "exobus/message_name.hpp"
#include "exobus/message_version.hpp"
#include "exobus/service_name.hpp"
#include "yaml_reader.hpp"

namespace exobus {
namespace {

using detail::YamlReader;

constexpr std::uint32_t kMaxRingCapacity = 1u << 20;
// With the queues of the service types, one segment holds 4096 rings (exobusd's bus plan).
constexpr std::uint32_t kMaxInstances = 4000;

// Propagates the error of a Result-returning expression out of the enclosing function.
#define EXOBUS_TRY(expression)                           \
  do {                                                   \
    if (auto try_result_ = (expression); !try_result_) { \
      return std::move(try_result_).error();             \
    }                                                    \
  } while (false)

Result<std::uint32_t> parse_segment_mode(const YamlReader& reader, const YAML::Node& node) {
  auto text = reader.scalar(node, "segment-mode");
  if (!text) return std::move(text).error();
  const bool octal = !text->empty() && text->size() <= 4 &&
                     std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '7'; });
  if (!octal) {
    return reader.error(node, "segment-mode '" + *text + "' is not an octal permission such as \"0660\"");
  }
  const auto mode = static_cast<std::uint32_t>(std::stoul(*text, nullptr, 8));
  if ((mode & 0007) != 0) {
    return reader.error(
        node, "segment-mode " + *text + " gives access to every local user; clear the last digit (e.g. \"0660\")");
  }
  if (mode > 0777) {
    return reader.error(node, "segment-mode " + *text + " sets special bits; use only owner and group bits");
  }
  if ((mode & 0600) != 0600) {
    return reader.error(node, "segment-mode " + *text + " must give the owner read and write (6 in the owner digit)");
  }
  return mode;
}

// "PORT" (on the loopback address) or "IPV4:PORT"; a port, 0 to 65535, that is 0 lets the
// kernel choose.
Result<MetricsAddress> parse_metrics_address(const YamlReader& reader, const YAML::Node& node) {
  auto text = reader.scalar(node, "metrics-address");
  if (!text) return std::move(text).error();
  MetricsAddress address;
  std::string port = *text;
  if (const auto colon = text->rfind(':'); colon != std::string::npos) {
    address.host = text->substr(0, colon);
    port = text->substr(colon + 1);
    in_addr parsed{};
    if (::inet_pton(AF_INET, address.host.c_str(), &parsed) != 1) {
      return reader.error(node, "metrics-address '" + *text + "' does not start with an IPv4 address such as 127.0.0.1");
    }
  }
  const bool digits = !port.empty() && port.size() <= 5 &&
                      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoul(port) > 65535) {
    return reader.error(node, "metrics-address '" + *text +
                                  "' has no TCP port (0 to 65535) after its address; write e.g. \"127.0.0.1:9464\" or "
                                  "\"9464\"");
  }
  address.port = static_cast<std::uint16_t>(std::stoul(port));
  return address;
}

Result<std::vector<SizeClass>> parse_size_classes(const YamlReader& reader, const YAML::Node& node) {
  if (!node.IsSequence() || node.size() == 0) {
    return reader.error(node, "size-classes must be a non-empty list of {size, count}");
  }
  std::vector<SizeClass> classes;
  for (const auto& item : node) {
    EXOBUS_TRY(reader.check_mapping(item, "a size class", {"size", "count"}));
    if (!item["size"]) return reader.error(item, "size class is missing 'size' (bytes, a power of two)");
    if (!item["count"]) return reader.error(item, "size class is missing 'count' (number of chunks)");
    auto size = reader.number(item["size"], "size", 256, 1u << 20, true);
    if (!size) return std::move(size).error();
    auto count = reader.number(item["count"], "count", 1, 1u << 24);
    if (!count) return std::move(count).error();
    if (!classes.empty() && *size <= classes.back().size) {
      return reader.error(item["size"], "size classes must be listed by strictly increasing size; " +
                                            std::to_string(*size) + " follows " + std::to_string(classes.back().size));
    }
    classes.push_back({*size, *count});
  }
  return classes;
}

Result<BusConfig> parse_bus(const YamlReader& reader, const YAML::Node& node) {
  BusConfig bus;
  EXOBUS_TRY(reader.check_mapping(node, "bus",
                                  {"segment-mode", "group", "max-instances", "max-instances-per-user",
                                   "max-connections-per-user", "registration-timeout-ms", "reply-inbox-capacity",
                                   "size-classes", "metrics-address"}));
  if (const auto mode = node["segment-mode"]) {
    auto value = parse_segment_mode(reader, mode);
    if (!value) return std::move(value).error();
    bus.segment_mode = *value;
  }
  if (const auto group = node["group"]) {
    auto value = reader.scalar(group, "group");
    if (!value) return std::move(value).error();
    if (value->empty() || value->find_first_of(" \t:/") != std::string::npos) {
      return reader.error(group, "group '" + *value + "' is not a group name or a numeric gid");
    }
    bus.group = std::move(*value);
  }
  if (const auto max = node["max-instances"]) {
    auto value = reader.number(max, "max-instances", 1, kMaxInstances);
    if (!value) return std::move(value).error();
    bus.max_instances = *value;
  }
  if (const auto per_user = node["max-instances-per-user"]) {
    auto value = reader.number(per_user, "max-instances-per-user", 1, kMaxInstances);
    if (!value) return std::move(value).error();
    if (*value > bus.max_instances) {
      return reader.error(per_user, "max-instances-per-user " + std::to_string(*value) + " is above max-instances " +
                                        std::to_string(bus.max_instances) +
                                        " (the whole bus); lower it, or leave it out for no limit per user");
    }
    bus.max_instances_per_user = *value;
  }
  if (const auto connections = node["max-connections-per-user"]) {
    auto value = reader.number(connections, "max-connections-per-user", 1, 65536);
    if (!value) return std::move(value).error();
    bus.max_connections_per_user = *value;
  }
  if (const auto timeout = node["registration-timeout-ms"]) {
    auto value = reader.number(timeout, "registration-timeout-ms", 100, 3'600'000);
    if (!value) return std::move(value).error();
    bus.registration_timeout_ms = *value;
  }
  if (const auto inbox = node["reply-inbox-capacity"]) {
    auto value = reader.number(inbox, "reply-inbox-capacity", 16, kMaxRingCapacity, true);
    if (!value) return std::move(value).error();
    bus.reply_inbox_capacity = *value;
  }
  if (const auto classes = node["size-classes"]) {
    auto value = parse_size_classes(reader, classes);
    if (!value) return std::move(value).error();
    bus.size_classes = std::move(*value);
  }
  if (const auto metrics = node["metrics-address"]) {
    auto value = parse_metrics_address(reader, metrics);
    if (!value) return std::move(value).error();
    bus.metrics_address = std::move(*value);
  }
  return bus;
}

// A list of message names, each valid and listed once.
Result<std::vector<std::string>> parse_names(const YamlReader& reader, const YAML::Node& node, std::string_view key) {
  if (!node.IsSequence()) return reader.error(node, std::string(key) + " must be a list of message names");
  std::vector<std::string> names;
  for (const auto& item : node) {
    auto name = reader.scalar(item, "a message name");
    if (!name) return std::move(name).error();
    if (auto valid = validate_message_name(*name); !valid) {
      return reader.error(item, valid.error().message + " (in " + std::string(key) + ")");
    }
    if (std::find(names.begin(), names.end(), *name) != names.end()) {
      return reader.error(item, quote_name(*name) + " is listed twice in " + std::string(key) + "; remove one");
    }
    names.push_back(std::move(*name));
  }
  return names;
}

bool declares(const ServiceTypeConfig& service, std::string_view name) {
  const auto has = [name](const std::vector<std::string>& list) {
    return std::find(list.begin(), list.end(), name) != list.end();
  };
  return has(service.sends) || has(service.receives);
}

Result<void> parse_translations(const YamlReader& reader, const YAML::Node& node, ServiceTypeConfig& service) {
  if (!node.IsSequence()) {
    return reader.error(node, "message-translation must be a list of {public: name, internal: name}");
  }
  std::vector<YAML::Mark> public_marks;
  for (const auto& item : node) {
    EXOBUS_TRY(reader.check_mapping(item, "a message translation", {"public", "internal"}));
    for (const char* key : {"public", "internal"}) {
      if (!item[key]) return reader.error(item, std::string("message translation is missing '") + key + "'");
    }
    auto public_name = reader.scalar(item["public"], "public");
    if (!public_name) return std::move(public_name).error();
    auto internal_name = reader.scalar(item["internal"], "internal");
    if (!internal_name) return std::move(internal_name).error();
    for (const auto& [key, name] : {std::pair{"public", &*public_name}, std::pair{"internal", &*internal_name}}) {
      if (auto valid = validate_message_name(*name); !valid) {
        return reader.error(item[key], valid.error().message);
      }
    }
    if (!declares(service, *internal_name)) {
      return reader.error(item["internal"], "translation of unknown message " + quote_name(*internal_name) +
                                                ": service '" + service.name +
                                                "' neither sends nor receives it; list the name the service "
                                                "uses in sends or receives");
    }
    for (const MessageTranslation& earlier : service.translations) {
      if (earlier.internal_name == *internal_name) {
        return reader.error(item["internal"], quote_name(*internal_name) + " is translated twice; remove one");
      }
      if (earlier.public_name == *public_name) {
        return reader.error(item["public"], "two messages translate to " + quote_name(*public_name) +
                                                "; each public name may be used once");
      }
    }
    service.translations.push_back({std::move(*public_name), std::move(*internal_name)});
    public_marks.push_back(item["public"].Mark());
  }
  // An untranslated name is its own public name, so translating another name onto it
  // would make two of the service's messages indistinguishable on the bus. Checked after
  // all translations are known, since the untranslated-looking name may be translated
  // further down.
  const auto is_translated = [&](const std::string& name) {
    return std::any_of(service.translations.begin(), service.translations.end(),
                       [&](const MessageTranslation& t) { return t.internal_name == name; });
  };
  for (std::size_t i = 0; i < service.translations.size(); ++i) {
    const std::string& public_name = service.translations[i].public_name;
    if (declares(service, public_name) && !is_translated(public_name)) {
      return reader.error(public_marks[i], "public name " + quote_name(public_name) + " is also a name service '" +
                                               service.name + "' uses untranslated; rename one of them");
    }
  }
  return {};
}

Result<std::vector<Principal>> parse_principals(const YamlReader& reader, const YAML::Node& node,
                                                std::string_view key) {
  if (!node.IsSequence()) return reader.error(node, std::string(key) + " must be a list of names or numeric ids");
  std::vector<Principal> principals;
  for (const auto& item : node) {
    auto text = reader.scalar(item, key);
    if (!text) return std::move(text).error();
    if (!text->empty() && std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; })) {
      auto id = reader.number(item, key, 0, 0xfffffffe);
      if (!id) return std::move(id).error();
      principals.push_back({{}, *id});
      continue;
    }
    const bool plausible =
        !text->empty() && text->size() <= 256 && std::none_of(text->begin(), text->end(), [](char c) {
          return static_cast<unsigned char>(c) <= ' ' || c == ':' || c == 0x7f;
        });
    if (!plausible) {
      return reader.error(item,
                          "'" + *text + "' in " + std::string(key) + " is not a user or group name or a numeric id");
    }
    principals.push_back({std::move(*text), std::nullopt});
  }
  return principals;
}

// Bounded like the YAML files (kMaxConfigFileBytes).
Result<std::string> read_text_file(const std::filesystem::path& path) { return detail::read_config_file(path); }

Result<double> parse_version_node(const YamlReader& reader, const YAML::Node& node) {
  auto text = reader.scalar(node, "version");
  if (!text) return std::move(text).error();
  Result<double> version = parse_version(*text);
  if (!version) return reader.error(node, version.error().message);
  return version;
}

// versions: {name: [1, 1.2]} (the default is the highest), or
//           {name: {known: [1, 1.2], default: 1}}.
Result<void> parse_versions(const YamlReader& reader, const YAML::Node& node, ServiceTypeConfig& service) {
  EXOBUS_TRY(reader.check_unique_keys(node, "versions"));
  for (const auto& entry : node) {
    const std::string& name = entry.first.Scalar();
    if (!declares(service, name)) {
      return reader.error(entry.first, "versions of " + quote_name(name) + ", which service '" + service.name +
                                           "' neither sends nor receives; add it to sends or receives");
    }
    MessageVersions versions{name, {}, kDefaultVersion};
    // Never assigned to after construction: assigning a YAML::Node writes into the tree.
    const bool long_form = entry.second.IsMap();
    if (long_form) {
      EXOBUS_TRY(reader.check_mapping(entry.second, "versions of " + quote_name(name), {"known", "default"}));
      if (!entry.second["known"]) {
        return reader.error(entry.second, "versions of " + quote_name(name) + " need 'known: [...]'");
      }
    }
    const YAML::Node known = long_form ? entry.second["known"] : entry.second;
    const YAML::Node default_node = long_form ? entry.second["default"] : YAML::Node();
    if (!known.IsSequence() || known.size() == 0) {
      return reader.error(known, "versions of " + quote_name(name) + " are a non-empty list such as [1, 1.2]");
    }
    for (const auto& item : known) {
      Result<double> version = parse_version_node(reader, item);
      if (!version) return version.error();
      if (std::find(versions.known.begin(), versions.known.end(), *version) != versions.known.end()) {
        return reader.error(item, "version " + version_text(*version) + " of " + quote_name(name) + " is listed twice");
      }
      versions.known.push_back(*version);
    }
    std::sort(versions.known.begin(), versions.known.end());
    versions.default_version = versions.known.back();
    if (long_form && default_node) {
      Result<double> version = parse_version_node(reader, default_node);
      if (!version) return version.error();
      if (std::find(versions.known.begin(), versions.known.end(), *version) == versions.known.end()) {
        return reader.error(default_node, "default version " + version_text(*version) + " of " + quote_name(name) +
                                              " is not among its known versions");
      }
      versions.default_version = *version;
    }
    service.versions.push_back(std::move(versions));
  }
  return {};
}

Result<Schema> parse_schema(const YamlReader& reader, const YAML::Node& node, const std::string& label) {
  std::string json;
  if (node.IsMap()) {
    json = detail::yaml_to_json(node);
  } else if (node.IsScalar()) {
    const std::filesystem::path path = reader.file().parent_path() / node.Scalar();
    std::error_code ignored;
    if (!std::filesystem::is_regular_file(path, ignored)) {
      return reader.error(node, "schema file " + path.string() + " for " + label +
                                    " does not exist; paths are relative to " + reader.file().string());
    }
    auto text = read_text_file(path);
    if (!text) return reader.error(node, text.error().message);
    json = std::move(*text);
  } else {
    return reader.error(node, "the schema for " + label + " must be a JSON Schema mapping or the path of a .json file");
  }
  return Schema::compile(json, "schema for " + label + " (" + detail::location(reader.file(), node.Mark()) + ")");
}

// schemas: {name: <schema>} for every version, or {name: {by-version: {"1": <schema>, ...}}}.
// A JSON Schema has no keyword 'by-version', so the two forms never collide.
Result<void> parse_schemas(const YamlReader& reader, const YAML::Node& node, ServiceTypeConfig& service) {
  EXOBUS_TRY(reader.check_unique_keys(node, "schemas"));
  for (const auto& entry : node) {
    const std::string& name = entry.first.Scalar();
    if (!declares(service, name)) {
      return reader.error(entry.first, "schema for " + quote_name(name) + ", which service '" + service.name +
                                           "' neither sends nor receives; add it to sends or receives, or "
                                           "remove the schema");
    }
    if (!entry.second.IsMap() || !entry.second["by-version"]) {
      auto schema = parse_schema(reader, entry.second, quote_name(name));
      if (!schema) return std::move(schema).error();
      service.schemas.push_back({name, std::nullopt, std::move(*schema)});
      continue;
    }
    EXOBUS_TRY(reader.check_mapping(entry.second, "schemas of " + quote_name(name), {"by-version"}));
    const YAML::Node by_version = entry.second["by-version"];
    if (!by_version.IsMap() || by_version.size() == 0) {
      return reader.error(by_version, "by-version of " + quote_name(name) + " maps versions to schemas");
    }
    EXOBUS_TRY(reader.check_unique_keys(by_version, "by-version"));
    const MessageVersions versions = service.versions_of(name);
    for (const auto& version_entry : by_version) {
      Result<double> version = parse_version_node(reader, version_entry.first);
      if (!version) return version.error();
      if (std::find(versions.known.begin(), versions.known.end(), *version) == versions.known.end()) {
        return reader.error(version_entry.first, "schema for version " + version_text(*version) + " of " +
                                                     quote_name(name) + ", a version service '" + service.name +
                                                     "' does not list under versions");
      }
      auto schema = parse_schema(reader, version_entry.second, quote_name(name) + " version " + version_text(*version));
      if (!schema) return std::move(schema).error();
      service.schemas.push_back({name, *version, std::move(*schema)});
    }
  }
  return {};
}

// `bus` bounds the type's max-instances.
Result<void> parse_service_config(const YamlReader& reader, const YAML::Node& node, const BusConfig& bus,
                                  ServiceTypeConfig& service) {
  EXOBUS_TRY(
      reader.check_mapping(node, "service '" + service.name + "' config",
                           {"sends", "receives", "message-translation", "queue-capacity", "ack-timeout-ms",
                            "delivery-limit", "prefetch", "max-instances", "allowed-users", "allowed-groups",
                            "versions", "schemas", "validate-received"}));
  for (const auto& [key, list] : {std::pair{"sends", &service.sends}, std::pair{"receives", &service.receives}}) {
    if (const auto names_node = node[key]) {
      auto names = parse_names(reader, names_node, key);
      if (!names) return std::move(names).error();
      *list = std::move(*names);
    }
  }
  if (const auto translations = node["message-translation"]) {
    EXOBUS_TRY(parse_translations(reader, translations, service));
  }
  struct NumberKey {
    const char* key;
    std::uint32_t* field;
    std::uint32_t min;
    std::uint32_t max;
    bool power_of_two;
  };
  for (const NumberKey& number : {NumberKey{"queue-capacity", &service.queue_capacity, 16, kMaxRingCapacity, true},
                                  NumberKey{"ack-timeout-ms", &service.ack_timeout_ms, 1, 86'400'000, false},
                                  NumberKey{"delivery-limit", &service.delivery_limit, 1, 255, false},
                                  NumberKey{"prefetch", &service.prefetch, 1, 4096, false}}) {
    if (const auto value_node = node[number.key]) {
      auto value = reader.number(value_node, number.key, number.min, number.max, number.power_of_two);
      if (!value) return std::move(value).error();
      *number.field = *value;
    }
  }
  if (const auto max = node["max-instances"]) {
    auto value = reader.number(max, "max-instances", 1, kMaxInstances);
    if (!value) return std::move(value).error();
    if (*value > bus.max_instances) {
      return reader.error(max, "max-instances " + std::to_string(*value) + " of service type '" + service.name +
                                   "' is above the bus's max-instances " + std::to_string(bus.max_instances) +
                                   "; lower it, or raise bus.max-instances in the application file");
    }
    service.max_instances = *value;
  }
  if (const auto validate = node["validate-received"]) {
    auto value = reader.boolean(validate, "validate-received");
    if (!value) return std::move(value).error();
    service.validate_received = *value;
  }
  for (const auto& [key, list] :
       {std::pair{"allowed-users", &service.allowed_users}, std::pair{"allowed-groups", &service.allowed_groups}}) {
    if (const auto principals_node = node[key]) {
      auto principals = parse_principals(reader, principals_node, key);
      if (!principals) return std::move(principals).error();
      *list = std::move(*principals);
    }
  }
  // Versions first: a schema by version names versions of its name.
  if (const auto versions = node["versions"]) {
    EXOBUS_TRY(parse_versions(reader, versions, service));
  }
  if (const auto schemas = node["schemas"]) {
    EXOBUS_TRY(parse_schemas(reader, schemas, service));
  }
  return {};
}

Result<ServiceTypeConfig> parse_service(const YamlReader& reader, const YAML::Node& key, const YAML::Node& node,
                                        const BusConfig& bus) {
  ServiceTypeConfig service;
  service.name = key.Scalar();
  if (auto valid = validate_service_name(service.name); !valid) return reader.error(key, valid.error().message);
  EXOBUS_TRY(reader.check_mapping(node, "service '" + service.name + "'", {"location", "config"}));
  const auto location = node["location"];
  const auto inline_config = node["config"];
  if (location && inline_config) {
    return reader.error(node, "service '" + service.name + "' has both 'location' and 'config'; keep one");
  }
  if (inline_config) {
    service.config_file = reader.file();
    EXOBUS_TRY(parse_service_config(reader, inline_config, bus, service));
    return service;
  }
  if (!location) {
    return reader.error(
        node, "service '" + service.name + "' needs 'location' (directory with its config.yml) or an inline 'config'");
  }
  auto directory = reader.scalar(location, "location");
  if (!directory) return std::move(directory).error();
  service.config_file = reader.file().parent_path() / *directory / "config.yml";
  std::error_code ignored;
  if (!std::filesystem::is_regular_file(service.config_file, ignored)) {
    return reader.error(location, "service '" + service.name + "': " + service.config_file.string() +
                                      " does not exist; 'location' is a directory relative to " +
                                      reader.file().string() + " that holds config.yml");
  }
  auto service_reader = YamlReader::open(service.config_file);
  if (!service_reader) return std::move(service_reader).error();
  EXOBUS_TRY(parse_service_config(*service_reader, service_reader->root(), bus, service));
  return service;
}

}  // namespace

MessageVersions ServiceTypeConfig::versions_of(std::string_view name) const {
  for (const MessageVersions& entry : versions) {
    if (entry.name == name) return entry;
  }
  return {std::string(name), {kDefaultVersion}, kDefaultVersion};
}

std::optional<ServiceTypeIndex> ApplicationConfig::find_service(std::string_view name) const noexcept {
  for (ServiceTypeIndex index = 0; index < services.size(); ++index) {
    if (services[index].name == name) return index;
  }
  return std::nullopt;
}

Result<ApplicationConfig> load_application_config(const std::filesystem::path& application_file) {
  auto opened = YamlReader::open(application_file);
  if (!opened) return std::move(opened).error();
  const YamlReader& reader = *opened;
  const YAML::Node& root = reader.root();
  if (!root.IsMap()) {
    return reader.error(root, "an application file is a mapping with 'name', 'services' and optionally 'bus'");
  }
  EXOBUS_TRY(reader.check_mapping(root, "the application file", {"name", "bus", "services"}));

  ApplicationConfig config;
  config.file = application_file;
  if (!root["name"]) return reader.error(root, "missing 'name': give the application a name, e.g. 'name: shop'");
  auto name = reader.scalar(root["name"], "name");
  if (!name) return std::move(name).error();
  if (auto valid = validate_service_name(*name); !valid) {
    return reader.error(root["name"], "application " + valid.error().message);
  }
  config.name = std::move(*name);

  if (const auto bus = root["bus"]) {
    auto parsed = parse_bus(reader, bus);
    if (!parsed) return std::move(parsed).error();
    config.bus = std::move(*parsed);
  }

  const auto services = root["services"];
  if (!services) return reader.error(root, "missing 'services': list the application's service types");
  EXOBUS_TRY(reader.check_unique_keys(services, "services"));
  if (services.size() == 0) return reader.error(services, "'services' is empty; list at least one service type");
  for (const auto& entry : services) {
    auto service = parse_service(reader, entry.first, entry.second, config.bus);
    if (!service) return std::move(service).error();
    config.services.push_back(std::move(*service));
  }
  config.routing = RoutingTable(config.services);
  return config;
}

}  // namespace exobus
