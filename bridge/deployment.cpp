#include "deployment.hpp"

#include <yaml-cpp/yaml.h>

#include "exobus/service_name.hpp"

#include <algorithm>
#include <set>

namespace exobus::bridge {

namespace {

Error invalid(const std::filesystem::path& file, const YAML::Node& node, const std::string& what) {
  const YAML::Mark mark = node.Mark();
  std::string where = file.string();
  if (!mark.is_null()) where += ":" + std::to_string(mark.line + 1);
  return Error{ErrorCode::config_error, where + ": " + what};
}

template <typename Number>
Result<Number> whole_number(const std::filesystem::path& file, const YAML::Node& node, const std::string& key,
                            Number low, Number high) {
  Number value{};
  try {
    value = node.as<Number>();
  } catch (const YAML::Exception&) {
    return invalid(file, node, key + " is not a whole number");
  }
  if (value < low || value > high) {
    return invalid(
        file, node,
        key + " is " + std::to_string(value) + "; it must be " + std::to_string(low) + " .. " + std::to_string(high));
  }
  return value;
}

Result<std::string> text(const std::filesystem::path& file, const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar()) return invalid(file, node, key + " must be a string");
  return node.Scalar();
}

Result<NatsSettings> read_nats(const std::filesystem::path& file, const YAML::Node& nats) {
  NatsSettings settings;
  if (!nats.IsMap()) return invalid(file, nats, "nats must be a mapping");
  for (const auto& entry : nats) {
    const std::string key = entry.first.Scalar();
    const YAML::Node& value = entry.second;
    if (key == "servers") {
      if (!value.IsSequence() || value.size() == 0)
        return invalid(file, value, "nats.servers must be a non-empty list");
      for (const auto& server : value) {
        Result<std::string> url = text(file, server, "a server");
        if (!url) return url.error();
        settings.servers.push_back(url.value());
      }
    } else if (key == "credentials-file") {
      Result<std::string> path = text(file, value, key);
      if (!path) return path.error();
      settings.credentials_file = file.parent_path() / path.value();
    } else if (key == "user" || key == "password-env" || key == "token-env") {
      Result<std::string> got = text(file, value, key);
      if (!got) return got.error();
      (key == "user"           ? settings.user
       : key == "password-env" ? settings.password_env
                               : settings.token_env) = got.value();
    } else if (key == "tls") {
      if (!value.IsMap()) return invalid(file, value, "nats.tls must be a mapping of ca-file, cert-file, key-file");
      for (const auto& tls : value) {
        const std::string name = tls.first.Scalar();
        Result<std::string> path = text(file, tls.second, name);
        if (!path) return path.error();
        const std::filesystem::path resolved = file.parent_path() / path.value();
        if (name == "ca-file") {
          settings.tls_ca_file = resolved;
        } else if (name == "cert-file") {
          settings.tls_cert_file = resolved;
        } else if (name == "key-file") {
          settings.tls_key_file = resolved;
        } else {
          return invalid(file, tls.first, "unknown key nats.tls." + name + " (ca-file, cert-file, key-file)");
        }
      }
      if (settings.tls_cert_file.empty() != settings.tls_key_file.empty()) {
        return invalid(file, value, "nats.tls needs cert-file and key-file together");
      }
    } else if (key == "replicas") {
      Result<unsigned> replicas = whole_number<unsigned>(file, value, "nats.replicas", 1, 5);
      if (!replicas) return replicas.error();
      settings.replicas = replicas.value();
    } else if (key == "duplicate-window-ms" || key == "ack-wait-ms") {
      Result<long> ms = whole_number<long>(file, value, "nats." + key, 100, 86400000);
      if (!ms) return ms.error();
      (key == "ack-wait-ms" ? settings.ack_wait : settings.duplicate_window) = std::chrono::milliseconds(ms.value());
    } else if (key == "max-ack-pending") {
      Result<unsigned> pending = whole_number<unsigned>(file, value, "nats.max-ack-pending", 1, 1000000);
      if (!pending) return pending.error();
      settings.max_ack_pending = pending.value();
    } else {
      return invalid(file, entry.first,
                     "unknown key nats." + key +
                         " (servers, credentials-file, user, password-env, token-env, tls, replicas, "
                         "duplicate-window-ms, ack-wait-ms, max-ack-pending)");
    }
  }
  if (settings.servers.empty()) return invalid(file, nats, "nats.servers is required");
  if (!settings.password_env.empty() && settings.user.empty()) {
    return invalid(file, nats, "nats.password-env needs nats.user");
  }
  return settings;
}

}  // namespace

bool Deployment::runs_on(const std::string& type, const std::string& host) const {
  if (!is_placed(type)) return true;
  for (const Host& each : hosts) {
    if (each.name == host && std::find(each.types.begin(), each.types.end(), type) != each.types.end()) return true;
  }
  return false;
}

bool Deployment::is_placed(const std::string& type) const {
  return std::any_of(hosts.begin(), hosts.end(), [&](const Host& host) {
    return std::find(host.types.begin(), host.types.end(), type) != host.types.end();
  });
}

bool Deployment::has_host(const std::string& host) const {
  return std::any_of(hosts.begin(), hosts.end(), [&](const Host& each) { return each.name == host; });
}

Result<Deployment> load_deployment(const std::filesystem::path& file, const ApplicationConfig& application) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const YAML::Exception& error) {
    return Error{ErrorCode::config_error, file.string() + ": " + error.what()};
  }
  if (!root.IsMap()) return invalid(file, root, "the deployment must be a mapping with nats and hosts");
  Deployment deployment;
  bool saw_nats = false;
  for (const auto& entry : root) {
    const std::string key = entry.first.Scalar();
    if (key == "nats") {
      Result<NatsSettings> nats = read_nats(file, entry.second);
      if (!nats) return nats.error();
      deployment.nats = nats.value();
      saw_nats = true;
    } else if (key == "hosts") {
      if (!entry.second.IsMap() || entry.second.size() == 0) {
        return invalid(file, entry.second, "hosts must map each host's name to the service types it runs");
      }
      for (const auto& host : entry.second) {
        Deployment::Host placed{host.first.Scalar(), {}};
        if (!is_valid_service_name(placed.name)) {
          return invalid(file, host.first,
                         "host name '" + placed.name + "' must be 1 to 64 ASCII letters, digits, '-', '_' or '.'");
        }
        if (deployment.has_host(placed.name))
          return invalid(file, host.first, "host '" + placed.name + "' is given twice");
        if (!host.second.IsSequence()) return invalid(file, host.second, "the types of a host must be a list");
        for (const auto& type : host.second) {
          const std::string name = type.Scalar();
          if (!application.find_service(name)) {
            return invalid(file, type,
                           "host '" + placed.name + "' runs '" + name + "', which is not a service type of " +
                               application.file.string());
          }
          if (std::find(placed.types.begin(), placed.types.end(), name) != placed.types.end()) {
            return invalid(file, type, "host '" + placed.name + "' lists '" + name + "' twice");
          }
          placed.types.push_back(name);
        }
        deployment.hosts.push_back(std::move(placed));
      }
    } else if (key == "reply-window-ms") {
      Result<long> ms = whole_number<long>(file, entry.second, key, 1, 86400000);
      if (!ms) return ms.error();
      deployment.reply_window = std::chrono::milliseconds(ms.value());
    } else {
      return invalid(file, entry.first, "unknown key " + key + " (nats, hosts, reply-window-ms)");
    }
  }
  if (!saw_nats) return invalid(file, root, "nats is required");
  if (deployment.hosts.empty()) return invalid(file, root, "hosts is required");
  // JetStream consumer names cannot hold '.', so a type's consumer is its name with '_' for
  // '.'; two types that would share one are refused here rather than mixed at run time.
  std::set<std::string> consumers;
  for (const ServiceTypeConfig& type : application.services) {
    if (!deployment.is_placed(type.name)) continue;
    std::string consumer = type.name;
    std::replace(consumer.begin(), consumer.end(), '.', '_');
    if (!consumers.insert(consumer).second) {
      return invalid(
          file, root,
          "service types '" + type.name + "' and another differ only by '.' against '_'; rename one to place both");
    }
  }
  return deployment;
}

}  // namespace exobus::bridge
