#include "jetstream.hpp"

#include <nats/nats.h>

#include <cstdlib>

namespace exobus::bridge {

namespace {

constexpr std::int64_t kNanosPerMilli = 1000000;

Error nats_error(const std::string& doing, natsStatus status, jsErrCode js_code = static_cast<jsErrCode>(0)) {
  std::string message = doing + ": " + natsStatus_GetText(status);
  if (js_code != 0) message += " (JetStream error " + std::to_string(static_cast<int>(js_code)) + ")";
  if (const char* last = nats_GetLastError(nullptr); last != nullptr && *last != '\0')
    message += ": " + std::string(last);
  return Error{ErrorCode::io, message};
}

// Options built for one connect and destroyed after it.
struct OptionsGuard {
  natsOptions* options = nullptr;
  ~OptionsGuard() { natsOptions_Destroy(options); }
};

Result<void> configure(const NatsSettings& settings, const std::string& client_name, natsOptions* options) {
  std::vector<const char*> servers;
  for (const std::string& server : settings.servers) servers.push_back(server.c_str());
  natsStatus status = natsOptions_SetServers(options, servers.data(), static_cast<int>(servers.size()));
  if (status == NATS_OK) status = natsOptions_SetName(options, client_name.c_str());
  // A lost server is not the end: the bridge reconnects to another of the cluster for ever,
  // and what it could not publish meanwhile stays leased on the bus and is retried.
  if (status == NATS_OK) status = natsOptions_SetMaxReconnect(options, -1);
  if (status == NATS_OK) status = natsOptions_SetReconnectWait(options, 250);
  if (status == NATS_OK) status = natsOptions_SetTimeout(options, 2000);
  if (status == NATS_OK && !settings.credentials_file.empty()) {
    status = natsOptions_SetUserCredentialsFromFiles(options, settings.credentials_file.c_str(), nullptr);
  }
  if (status == NATS_OK && !settings.user.empty()) {
    const char* password = settings.password_env.empty() ? nullptr : std::getenv(settings.password_env.c_str());
    if (!settings.password_env.empty() && password == nullptr) {
      return Error{ErrorCode::config_error, "nats.password-env names " + settings.password_env + ", which is not set"};
    }
    status = natsOptions_SetUserInfo(options, settings.user.c_str(), password);
  }
  if (status == NATS_OK && !settings.token_env.empty()) {
    const char* token = std::getenv(settings.token_env.c_str());
    if (token == nullptr) {
      return Error{ErrorCode::config_error, "nats.token-env names " + settings.token_env + ", which is not set"};
    }
    status = natsOptions_SetToken(options, token);
  }
  const bool tls = !settings.tls_ca_file.empty() || !settings.tls_cert_file.empty();
  if (status == NATS_OK && tls) status = natsOptions_SetSecure(options, true);
  if (status == NATS_OK && !settings.tls_ca_file.empty()) {
    status = natsOptions_LoadCATrustedCertificates(options, settings.tls_ca_file.c_str());
  }
  if (status == NATS_OK && !settings.tls_cert_file.empty()) {
    status = natsOptions_LoadCertificatesChain(options, settings.tls_cert_file.c_str(), settings.tls_key_file.c_str());
  }
  if (status != NATS_OK) return nats_error("NATS connection options", status);
  return {};
}

}  // namespace

PulledMessage::~PulledMessage() { natsMsg_Destroy(message_); }

std::uint64_t PulledMessage::delivered() const {
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, message_) != NATS_OK) return 1;
  const std::uint64_t delivered = meta->NumDelivered;
  jsMsgMetaData_Destroy(meta);
  return delivered;
}

Result<void> PulledMessage::ack() {
  if (natsStatus status = natsMsg_Ack(message_, nullptr); status != NATS_OK) return nats_error("ack", status);
  return {};
}

Result<void> PulledMessage::nak(std::int64_t delay_ms) {
  if (natsStatus status = natsMsg_NakWithDelay(message_, delay_ms, nullptr); status != NATS_OK) {
    return nats_error("nak", status);
  }
  return {};
}

Result<void> PulledMessage::term() {
  if (natsStatus status = natsMsg_Term(message_, nullptr); status != NATS_OK) return nats_error("term", status);
  return {};
}

PullConsumer::~PullConsumer() { natsSubscription_Destroy(subscription_); }

Result<std::vector<PulledMessage>> PullConsumer::fetch(int batch, std::int64_t timeout_ms) {
  natsMsgList list{};
  jsErrCode js_code = static_cast<jsErrCode>(0);
  const natsStatus status = natsSubscription_Fetch(&list, subscription_, batch, timeout_ms, &js_code);
  std::vector<PulledMessage> pulled;
  if (status == NATS_TIMEOUT) return pulled;
  if (status != NATS_OK) return nats_error("fetch", status, js_code);
  pulled.reserve(static_cast<std::size_t>(list.Count));
  for (int i = 0; i < list.Count; ++i) {
    pulled.emplace_back(list.Msgs[i]);
    list.Msgs[i] = nullptr;  // owned by `pulled` now; the list frees only its array
  }
  natsMsgList_Destroy(&list);
  return pulled;
}

Result<PullConsumer::Lag> PullConsumer::lag() {
  jsConsumerInfo* info = nullptr;
  jsErrCode js_code = static_cast<jsErrCode>(0);
  if (natsStatus status = natsSubscription_GetConsumerInfo(&info, subscription_, nullptr, &js_code);
      status != NATS_OK) {
    return nats_error("consumer info", status, js_code);
  }
  Lag lag{info->NumPending, static_cast<std::uint64_t>(info->NumAckPending)};
  jsConsumerInfo_Destroy(info);
  return lag;
}

Result<std::unique_ptr<JetStream>> JetStream::connect(const NatsSettings& settings, const std::string& application,
                                                      const std::string& client_name) {
  std::unique_ptr<JetStream> jet(new JetStream(settings, application));
  OptionsGuard options;
  if (natsStatus status = natsOptions_Create(&options.options); status != NATS_OK) {
    return nats_error("NATS options", status);
  }
  if (Result<void> configured = configure(settings, client_name, options.options); !configured) {
    return configured.error();
  }
  if (natsStatus status = natsConnection_Connect(&jet->connection_, options.options); status != NATS_OK) {
    return nats_error("connecting to NATS", status);
  }
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = 5000;  // a publish without its ack after this long is retried
  if (natsStatus status = natsConnection_JetStream(&jet->context_, jet->connection_, &js_options); status != NATS_OK) {
    return nats_error("JetStream context", status);
  }
  if (Result<void> stream = jet->ensure_stream(); !stream) return stream.error();
  return jet;
}

JetStream::~JetStream() {
  jsCtx_Destroy(context_);
  natsConnection_Destroy(connection_);
}

Result<void> JetStream::ensure_stream() {
  const std::string name = stream_name(application_);
  const std::string subjects = "exobus." + application_ + ".>";
  const char* subject_list[] = {subjects.c_str()};
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = name.c_str();
  config.Subjects = subject_list;
  config.SubjectsLen = 1;
  // A work queue: a message leaves the stream once its type's consumer acknowledged it, as
  // it leaves a bus queue once an instance acknowledged it.
  config.Retention = js_WorkQueuePolicy;
  config.Storage = js_FileStorage;
  config.Replicas = settings_.replicas;
  config.Duplicates = settings_.duplicate_window.count() * kNanosPerMilli;
  jsStreamInfo* info = nullptr;
  jsErrCode js_code = static_cast<jsErrCode>(0);
  natsStatus status = js_AddStream(&info, context_, &config, nullptr, &js_code);
  if (status != NATS_OK && js_code == JSStreamNameExistErr) {
    js_code = static_cast<jsErrCode>(0);
    status = js_UpdateStream(&info, context_, &config, nullptr, &js_code);
  }
  jsStreamInfo_Destroy(info);
  if (status != NATS_OK) return nats_error("creating stream " + name, status, js_code);
  return {};
}

Result<void> JetStream::publish_command(const CrossingMessage& message, const std::string& type) {
  return publish(message, command_subject(application_, type), deduplication_id(message, type));
}

Result<void> JetStream::publish_reply(const CrossingMessage& message) {
  if (!message.return_address) return Error{ErrorCode::internal, "a reply without its return address"};
  const std::string& host = message.return_address->host;
  return publish(message, reply_subject(application_, host), deduplication_id(message, host));
}

Result<std::unique_ptr<PullConsumer>> JetStream::consume_commands(const std::string& type) {
  return consume(command_subject(application_, type), command_consumer(type));
}

Result<std::unique_ptr<PullConsumer>> JetStream::consume_replies(const std::string& host) {
  return consume(reply_subject(application_, host), reply_consumer(host));
}

Result<void> JetStream::publish(const CrossingMessage& message, const std::string& subject, const std::string& dedup) {
  natsMsg* out = nullptr;
  natsStatus status =
      natsMsg_Create(&out, subject.c_str(), nullptr, message.payload.data(), static_cast<int>(message.payload.size()));
  if (status != NATS_OK) return nats_error("message for " + subject, status);
  if (Result<void> headed = write_headers(message, out); !headed) {
    natsMsg_Destroy(out);
    return headed;
  }
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MsgId = dedup.c_str();
  jsPubAck* ack = nullptr;
  jsErrCode js_code = static_cast<jsErrCode>(0);
  status = js_PublishMsg(&ack, context_, out, &options, &js_code);
  jsPubAck_Destroy(ack);
  natsMsg_Destroy(out);
  if (status != NATS_OK) return nats_error("publishing to " + subject, status, js_code);
  return {};
}

Result<std::unique_ptr<PullConsumer>> JetStream::consume(const std::string& subject, const std::string& durable) {
  const std::string stream = stream_name(application_);
  jsSubOptions options;
  jsSubOptions_Init(&options);
  options.Stream = stream.c_str();
  options.Config.AckPolicy = js_AckExplicit;
  options.Config.AckWait = settings_.ack_wait.count() * kNanosPerMilli;
  // Unlimited: a message is redelivered until a bus takes it; the bus's delivery-limit
  // then applies there, as to any message.
  options.Config.MaxDeliver = -1;
  // Back-pressure: a type whose bus refuses (full queue) holds this many at most.
  options.Config.MaxAckPending = settings_.max_ack_pending;
  natsSubscription* subscription = nullptr;
  jsErrCode js_code = static_cast<jsErrCode>(0);
  if (natsStatus status =
          js_PullSubscribe(&subscription, context_, subject.c_str(), durable.c_str(), nullptr, &options, &js_code);
      status != NATS_OK) {
    return nats_error("consumer " + durable + " of " + stream, status, js_code);
  }
  return std::make_unique<PullConsumer>(subscription);
}

bool JetStream::connected() const { return natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED; }

std::string JetStream::connected_url() const {
  char url[256] = {};
  if (natsConnection_GetConnectedUrl(connection_, url, sizeof url) != NATS_OK) return {};
  return url;
}

}  // namespace exobus::bridge
