#include "metrics_endpoint.hpp"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>

#include <exception>
#include <limits>
#include <mutex>

namespace exobus::daemon {

// The last published figures as metric families, built at each scrape on the exposer's
// thread; the mutex is held only to copy or replace the figures.
class MetricsEndpoint::Families final : public prometheus::Collectable {
 public:
  void replace(BusFigures figures) {
    std::lock_guard lock(mutex_);
    figures_ = std::move(figures);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    BusFigures figures;
    {
      std::lock_guard lock(mutex_);
      figures = figures_;
    }
    std::vector<prometheus::MetricFamily> families;
    const auto per_type = [&](const char* name, const char* help, prometheus::MetricType kind, auto value) {
      prometheus::MetricFamily family{name, help, kind, {}};
      for (const TypeFigures& type : figures.types) {
        prometheus::ClientMetric metric;
        metric.label = {{"type", type.name}};
        set(metric, kind, static_cast<double>(value(type)));
        family.metric.push_back(std::move(metric));
      }
      families.push_back(std::move(family));
    };
    using prometheus::MetricType;
    per_type("exobus_messages_sent_total", "Messages sent by instances of the service type (replies included)",
             MetricType::Counter, [](const TypeFigures& t) { return t.counts.sent; });
    per_type("exobus_messages_delivered_total",
             "Commands and events handed to instances of the service type (replies are not deliveries)",
             MetricType::Counter, [](const TypeFigures& t) { return t.counts.delivered; });
    per_type("exobus_messages_acked_total", "Deliveries the service type's instances settled as done",
             MetricType::Counter, [](const TypeFigures& t) { return t.counts.acked; });
    per_type("exobus_messages_redelivered_total",
             "Deliveries marked redelivered (after a crash, a lease expiry or a release)", MetricType::Counter,
             [](const TypeFigures& t) { return t.counts.redelivered; });
    per_type("exobus_queue_depth", "Messages waiting for the service type (its queues and retry ring)",
             MetricType::Gauge, [](const TypeFigures& t) { return t.queued; });
    per_type("exobus_messages_in_flight", "Messages leased by the service type's instances, not yet settled",
             MetricType::Gauge, [](const TypeFigures& t) { return t.in_flight; });
    per_type("exobus_dead_letters", "Messages in the service type's dead letters", MetricType::Gauge,
             [](const TypeFigures& t) { return t.dead_lettered; });
    per_type("exobus_instances", "Running instances of the service type", MetricType::Gauge,
             [](const TypeFigures& t) { return t.instances.size(); });

    const auto per_type_histogram = [&](const char* name, const char* help, auto durations_of) {
      prometheus::MetricFamily family{name, help, MetricType::Histogram, {}};
      for (const TypeFigures& type : figures.types) {
        prometheus::ClientMetric metric;
        metric.label = {{"type", type.name}};
        const DelayFigures& durations = durations_of(type);
        std::uint64_t cumulative = 0;
        for (std::size_t bucket = 0; bucket < durations.buckets.size(); ++bucket) {
          cumulative += durations.buckets[bucket];
          const bool last = bucket + 1 == durations.buckets.size();
          metric.histogram.bucket.push_back(
              {cumulative, last ? std::numeric_limits<double>::infinity()
                                : static_cast<double>(shm::delay_bucket_bound_ns(bucket)) * 1e-9});
        }
        metric.histogram.sample_count = cumulative;
        metric.histogram.sample_sum = static_cast<double>(durations.sum_ns) * 1e-9;
        family.metric.push_back(std::move(metric));
      }
      families.push_back(std::move(family));
    };
    per_type_histogram("exobus_queueing_delay_seconds",
                       "Time deliveries to the service type waited, from their send to their take",
                       [](const TypeFigures& t) -> const DelayFigures& { return t.counts.delays; });
    per_type_histogram("exobus_handler_seconds",
                       "Time the service type's instances took over deliveries, from their take to their settlement",
                       [](const TypeFigures& t) -> const DelayFigures& { return t.counts.handler_times; });

    // The spec's outcomes: replies counted by their name; "(other)", which no message name
    // can be, for those no instance could name.
    prometheus::MetricFamily replies{"exobus_replies_total",
                                     "Replies the service type's instances sent, by outcome (the reply's name)",
                                     MetricType::Counter,
                                     {}};
    for (const TypeFigures& type : figures.types) {
      std::vector<std::pair<std::string, std::uint64_t>> outcomes(type.counts.replies_by_outcome.begin(),
                                                                  type.counts.replies_by_outcome.end());
      if (type.counts.replies_other > 0) outcomes.emplace_back("(other)", type.counts.replies_other);
      for (const auto& [outcome, count] : outcomes) {
        prometheus::ClientMetric metric;
        metric.label = {{"outcome", outcome}, {"type", type.name}};
        metric.counter.value = static_cast<double>(count);
        replies.metric.push_back(std::move(metric));
      }
    }
    families.push_back(std::move(replies));

    prometheus::MetricFamily refused{
        "exobus_messages_refused_total",
        "Messages the receiving type's instances refused (failed checks), by sender and reason",
        MetricType::Counter,
        {}};
    for (const TypeFigures& type : figures.types) {
      for (const RefusalFigures& from : type.refused_from) {
        for (std::size_t reason = 0; reason < shm::kRefusalReasons; ++reason) {
          if (from.by_reason[reason] == 0) continue;
          prometheus::ClientMetric metric;
          metric.label = {{"reason", std::string(shm::refusal_reason_name(static_cast<shm::RefusalReason>(reason)))},
                          {"sender", from.sender},
                          {"type", type.name}};
          metric.counter.value = static_cast<double>(from.by_reason[reason]);
          refused.metric.push_back(std::move(metric));
        }
      }
    }
    families.push_back(std::move(refused));

    const auto per_size = [&](const char* name, const char* help, auto value) {
      prometheus::MetricFamily family{name, help, MetricType::Gauge, {}};
      for (const SizeClassFigures& size_class : figures.size_classes) {
        prometheus::ClientMetric metric;
        metric.label = {{"size", std::to_string(size_class.size)}};
        metric.gauge.value = static_cast<double>(value(size_class));
        family.metric.push_back(std::move(metric));
      }
      families.push_back(std::move(family));
    };
    per_size("exobus_pool_chunks", "Message buffers of the size class, over every link",
             [](const SizeClassFigures& c) { return c.chunks; });
    per_size("exobus_pool_chunks_in_use", "Message buffers of the size class being written or not yet acknowledged",
             [](const SizeClassFigures& c) { return c.in_use; });

    prometheus::MetricFamily dropped{"exobus_replies_dropped_total",
                                     "Replies dropped because their requester was gone and nobody else receives them",
                                     MetricType::Counter,
                                     {}};
    prometheus::ClientMetric metric;
    metric.counter.value = static_cast<double>(figures.replies_dropped);
    dropped.metric.push_back(std::move(metric));
    families.push_back(std::move(dropped));
    return families;
  }

 private:
  static void set(prometheus::ClientMetric& metric, prometheus::MetricType kind, double value) {
    if (kind == prometheus::MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
  }

  mutable std::mutex mutex_;
  BusFigures figures_;
};

Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::open(const MetricsAddress& address) {
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  endpoint->families_ = std::make_shared<Families>();
  try {
    // One serving thread: scrapes are rare and each copies the figures once.
    endpoint->exposer_ = std::make_unique<prometheus::Exposer>(address.text(), 1);
  } catch (const std::exception& error) {
    return Error{ErrorCode::io, "cannot serve metrics on " + address.text() + " (bus.metrics-address): " +
                                    error.what() + "; choose a free port on an address of this host"};
  }
  const std::vector<int> ports = endpoint->exposer_->GetListeningPorts();
  endpoint->address_ = address.host + ":" + std::to_string(ports.empty() ? address.port : ports.front());
  endpoint->exposer_->RegisterCollectable(endpoint->families_);
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() = default;

void MetricsEndpoint::publish(BusFigures figures) { families_->replace(std::move(figures)); }

}  // namespace exobus::daemon
