// exobus._exobus: the client library as Python objects. The exobus package (exobus/__init__.py)
// builds the asyncio API over it; this module only moves calls and data across, and keeps
// three rules:
//   - the GIL is released wherever the library may wait (connect, start, stop, send,
//     request) and is taken only to call into Python;
//   - an async handler's Delivery is moved out of the library's handler (deferred settling,
//     exobus/delivery.hpp) into a Python object, which settles it on any thread, at any time;
//     a plain handler's is lent to Python for the handler's call only (PyDelivery);
//   - Python objects kept by the library's threads are GilRefs, and those threads take the
//     GIL with a thread state of their own (gil_ref.hpp).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "conversions.hpp"
#include "exobus/service.hpp"
#include "exobus/test_bus.hpp"
#include "gil_ref.hpp"

namespace py = pybind11;

namespace exobus::python {
namespace {

py::object decoded_json(std::string_view text) {
  if (text.empty()) return py::none();
  return py::module_::import("json").attr("loads")(bytes_of(text));
}

// The fields every received message has, for Message, Reply and Delivery alike; `get`
// gives the Received of an object of the class.
template <class Class, class Get>
void add_message_fields(Class& cls, Get get) {
  using Self = typename Class::type;
  cls.def_property_readonly(
         "name", [get](const Self& self) { return get(self).name; }, "The message's name, in this service's terms.")
      .def_property_readonly("version", [get](const Self& self) { return get(self).version; })
      .def_property_readonly(
          "id", [get](const Self& self) { return get(self).id.to_string(); }, "The message's own id (a UUID).")
      .def_property_readonly(
          "request_id", [get](const Self& self) { return get(self).request_id.to_string(); },
          "The end-user request the message belongs to (a UUID).")
      .def_property_readonly(
          "response_to",
          [get](const Self& self) -> std::optional<std::string> {
            const auto& response_to = get(self).response_to;
            if (!response_to) return std::nullopt;
            return response_to->to_string();
          },
          "The id of the command a reply answers; None for a command.")
      .def_property_readonly(
          "sender", [get](const Self& self) { return get(self).sender; }, "The sending service type.")
      .def_property_readonly(
          "deliveries", [get](const Self& self) { return get(self).deliveries; },
          "How often the message was delivered to this service type before.")
      .def_property_readonly("redelivered", [get](const Self& self) { return get(self).redelivered(); });
}

// A handler's delivery as Python sees it, in one of two ways:
//   - owned (an async handler's): moved out of its handler, it is Python's until settled,
//     for as long as the handler takes, on any thread;
//   - lent (a plain handler's): the library's own, for the length of the handler's call,
//     which is how the library settles it when the call returns. Once the loan ends every
//     call raises closed; the receiving thread lends the same object again to its next
//     handler when nobody kept it (LentDelivery).
// Python threads may use one at the same time with the GIL released (a reply from a thread
// pool, an ack from the loop): the mutex makes them take turns, as a Delivery requires.
class PyDelivery {
 public:
  PyDelivery() = default;
  explicit PyDelivery(Delivery delivery) : owned_(std::move(delivery)), delivery_(&*owned_) {}

  // Precondition of both: the caller holds the GIL.
  void lend(Delivery& delivery) {
    std::lock_guard lock(mutex_);
    delivery_ = &delivery;
    payload_.reset();
  }
  void end_loan() {
    std::lock_guard lock(mutex_);
    delivery_ = nullptr;
  }

  const Received& message() const { return delivery().message(); }

  // Copied out of shared memory once, on first use, so that it may be read again after the
  // delivery is settled; that first use must come before.
  py::bytes payload() {
    if (!payload_) payload_ = bytes_of(held_payload());
    return py::reinterpret_borrow<py::bytes>(*payload_);
  }
  py::memoryview view() {
    std::string_view payload = held_payload();
    return py::memoryview::from_memory(static_cast<const void*>(payload.data()),
                                       static_cast<py::ssize_t>(payload.size()));
  }
  bool payload_intact() {
    std::lock_guard lock(mutex_);
    return delivery().payload_intact();
  }

  void reply(const std::string& outcome, const py::object& payload, std::optional<double> version,
             const std::optional<std::string>& request_id) {
    SendOptions options = send_options(version, request_id);
    PayloadText text(payload);
    py::gil_scoped_release nogil;
    std::lock_guard lock(mutex_);
    check(delivery().reply(outcome, text.text(), options));
  }
  void send(const std::string& name, const py::object& payload, std::optional<double> version,
            const std::optional<std::string>& request_id) {
    SendOptions options = send_options(version, request_id);
    PayloadText text(payload);
    py::gil_scoped_release nogil;
    std::lock_guard lock(mutex_);
    check(delivery().send(name, text.text(), options));
  }
  void send_with_replies(const std::string& name, const py::object& payload, py::function on_reply, double timeout,
                         std::optional<double> version, const std::optional<std::string>& request_id);

  void ack() { settle(&Delivery::ack); }
  void release() { settle(&Delivery::release); }
  void reject() { settle(&Delivery::reject); }
  void renew() { settle(&Delivery::renew); }
  bool settled() {
    std::lock_guard lock(mutex_);
    return delivery().settled();
  }

 private:
  std::string_view held_payload() {
    std::lock_guard lock(mutex_);
    if (delivery().settled()) {
      throw BusError{{ErrorCode::closed, "the delivery of '" + delivery().message().name +
                                             "' is settled, so its payload is no longer held; read the payload "
                                             "before settling, or copy what must outlive it"}};
    }
    return delivery().payload();
  }
  void settle(Result<void> (Delivery::*how)()) {
    std::lock_guard lock(mutex_);
    check((delivery().*how)());
  }

  Delivery& delivery() const {
    if (delivery_ == nullptr) {
      throw BusError{{ErrorCode::closed,
                      "a plain handler's delivery is settled when the handler returns, and is no longer held "
                      "after it; to keep a delivery past its handler, handle it in an async def handler"}};
    }
    return *delivery_;
  }

  mutable std::mutex mutex_;
  std::optional<Delivery> owned_;
  Delivery* delivery_ = nullptr;      // owned_'s, the lent one, or null once the loan ended
  std::optional<py::bytes> payload_;  // touched with the GIL only
};

// Runs on the library's reply thread: once per reply, then once more with timed_out set if
// the timeout passes first. The callback returns whether more replies are wanted.
ReplyHandler reply_handler(py::function on_reply) {
  return [callback = keep(std::move(on_reply))](const Reply& reply) {
    LibraryThreadGil gil;
    try {
      return callback->get()(py::cast(reply, py::return_value_policy::copy)).cast<bool>() ? ReplyControl::more
                                                                                          : ReplyControl::done;
    } catch (py::error_already_set& error) {
      error.discard_as_unraisable("exobus reply callback");
      return ReplyControl::done;
    }
  };
}

void PyDelivery::send_with_replies(const std::string& name, const py::object& payload, py::function on_reply,
                                   double timeout, std::optional<double> version,
                                   const std::optional<std::string>& request_id) {
  SendOptions options = send_options(version, request_id);
  PayloadText text(payload);
  ReplyHandler handler = reply_handler(std::move(on_reply));
  std::chrono::milliseconds wait = milliseconds_of(timeout);
  py::gil_scoped_release nogil;
  std::lock_guard lock(mutex_);
  check(delivery().send(name, text.text(), std::move(handler), wait, options));
}

// The PyDelivery a library thread lends its plain handlers: the one it lent last when
// nobody kept it (the thread's reference is then the only one), else a new one, and the
// one kept stays expired for whoever kept it.
py::object lent_delivery(LibraryThreadGil& gil) {
  PyObject*& spare = gil.spare();
  if (spare == nullptr || Py_REFCNT(spare) != 1) {
    Py_XDECREF(spare);
    spare = py::cast(std::make_unique<PyDelivery>()).release().ptr();
  }
  return py::reinterpret_borrow<py::object>(spare);
}

// Runs on the library's receiving (or handler) thread, once per message.
//
// A plain handler (settles_on_return) gets the library's delivery lent for its call, and
// the library settles it as a C++ handler's: acked when the handler returns, unless it
// settled it; released when it raises (the error is logged by the exobus package).
//
// Otherwise `handler` is the package's hand-off to the asyncio loop: the delivery is moved
// out of the library first (deferred settling), before the GIL is taken, so that the
// thread waits for the GIL holding nothing of the bus's, and is settled by the loop's task.
Handler delivery_handler(py::function handler, bool settles_on_return) {
  if (settles_on_return) {
    return [callback = keep(std::move(handler))](Delivery& delivery) {
      LibraryThreadGil gil;
      py::object lent = lent_delivery(gil);
      PyDelivery& held = lent.cast<PyDelivery&>();
      held.lend(delivery);
      try {
        callback->get()(lent);
      } catch (py::error_already_set& error) {
        if (!delivery.settled()) (void)delivery.release();
        try {
          py::module_::import("exobus").attr("_handler_raised")(delivery.message().name, error.value());
        } catch (py::error_already_set& report_error) {
          report_error.discard_as_unraisable("exobus handler error report");
        }
      }
      held.end_loan();
    };
  }
  return [callback = keep(std::move(handler))](Delivery& delivery) {
    auto owned = std::make_unique<PyDelivery>(std::move(delivery));
    LibraryThreadGil gil;
    try {
      callback->get()(py::cast(std::move(owned)));
    } catch (py::error_already_set& error) {
      error.discard_as_unraisable("exobus handler dispatch");  // dropped, the delivery is released
    }
  };
}

class PyService {
 public:
  PyService(std::unique_ptr<Service> service, py::object test_bus)
      : service_(std::move(service)), test_bus_(std::move(test_bus)) {}
  PyService(const PyService&) = delete;
  PyService& operator=(const PyService&) = delete;
  // The library's threads end here and may be waiting for the GIL: it is released for them.
  ~PyService() {
    py::gil_scoped_release nogil;
    service_.reset();
  }

  void on(std::string name, std::optional<double> version, py::function handler, bool settles_on_return) {
    if (version) {
      service_->on(std::move(name), *version, delivery_handler(std::move(handler), settles_on_return));
    } else {
      service_->on(std::move(name), delivery_handler(std::move(handler), settles_on_return));
    }
  }
  void start() {
    py::gil_scoped_release nogil;
    check(service_->start());
  }
  void stop() {
    py::gil_scoped_release nogil;
    service_->stop();
  }
  void send(const std::string& name, const py::object& payload, std::optional<double> version,
            const std::optional<std::string>& request_id) {
    SendOptions options = send_options(version, request_id);
    PayloadText text(payload);
    py::gil_scoped_release nogil;
    check(service_->send(name, text.text(), options));
  }
  void try_send(const std::string& name, const py::object& payload, std::optional<double> version,
                const std::optional<std::string>& request_id) {
    SendOptions options = send_options(version, request_id);
    PayloadText text(payload);
    py::gil_scoped_release nogil;
    check(service_->try_send(name, text.text(), options));
  }
  void send_with_replies(const std::string& name, const py::object& payload, py::function on_reply, double timeout,
                         std::optional<double> version, const std::optional<std::string>& request_id) {
    SendOptions options = send_options(version, request_id);
    PayloadText text(payload);
    ReplyHandler handler = reply_handler(std::move(on_reply));
    std::chrono::milliseconds wait = milliseconds_of(timeout);
    py::gil_scoped_release nogil;
    check(service_->send(name, text.text(), std::move(handler), wait, options));
  }
  Reply request(const std::string& name, const py::object& payload, double timeout, std::optional<double> version,
                const std::optional<std::string>& request_id) {
    SendOptions options = send_options(version, request_id);
    PayloadText text(payload);
    std::chrono::milliseconds wait = milliseconds_of(timeout);
    py::gil_scoped_release nogil;
    return take(service_->call(name, text.text(), wait, options));
  }
  const std::string& service_type() const { return service_->service_type(); }
  std::uint32_t instance() const { return service_->instance(); }

 private:
  std::unique_ptr<Service> service_;
  py::object test_bus_;  // the TestBus this service is connected to, if any: it must outlive the service
};

WaitMode wait_mode_of(const std::string& name) {
  if (name == "adaptive") return WaitMode::adaptive;
  if (name == "busy_poll") return WaitMode::busy_poll;
  if (name == "sleep") return WaitMode::sleep;
  throw py::value_error("wait_mode is 'adaptive', 'busy_poll' or 'sleep', not '" + name + "'");
}

std::unique_ptr<PyService> connect(const std::string& bus, const std::string& service, const std::string& runtime_dir,
                                   double send_timeout, unsigned handler_threads, const std::string& wait_mode) {
  ServiceOptions options{.bus = bus,
                         .service = service,
                         .runtime_dir = runtime_dir,
                         .send_timeout = milliseconds_of(send_timeout),
                         .handler_threads = handler_threads,
                         .wait_mode = wait_mode_of(wait_mode),
                         .copy_payloads = false};  // Delivery.payload copies on demand, Delivery.view not at all
  py::gil_scoped_release nogil;
  return std::make_unique<PyService>(take(Service::connect(std::move(options))), py::object());
}

class PyTestBus {
 public:
  explicit PyTestBus(std::unique_ptr<TestBus> bus) : bus_(std::move(bus)) {}
  ~PyTestBus() {
    py::gil_scoped_release nogil;  // its played types' threads may be waiting for the GIL
    bus_.reset();
  }
  TestBus& bus() { return *bus_; }

 private:
  std::unique_ptr<TestBus> bus_;
};

}  // namespace

void register_error_translation() {
  py::register_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const BusError& bus_error) {
      py::object error = py::module_::import("exobus._errors")
                             .attr("error_for")(static_cast<int>(bus_error.error.code), bus_error.error.message);
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
    }
  });
}

}  // namespace exobus::python

PYBIND11_MODULE(_exobus, module) {
  using namespace exobus;
  using namespace exobus::python;
  module.doc() = "The ExoBus client library; use it through the exobus package.";
  register_error_translation();

  module.def(
      "error_codes",
      [] {
        std::vector<std::pair<int, std::string>> codes;
        for (int code = 1; error_code_from_string(to_string(static_cast<ErrorCode>(code))); ++code) {
          codes.emplace_back(code, std::string(to_string(static_cast<ErrorCode>(code))));
        }
        return codes;
      },
      "Every ErrorCode as (number, name), in order.");

  py::class_<Received> message(module, "Message", "A received message (a reply's, or one a test bus recorded).");
  add_message_fields(message, [](const Received& self) -> const Received& { return self; });
  message.def_property_readonly("payload", [](const Received& self) { return bytes_of(self.payload); })
      .def("json", [](const Received& self) { return decoded_json(self.payload); });

  py::class_<Reply> reply(module, "Reply", "A reply to a command this service sent.");
  add_message_fields(reply, [](const Reply& self) -> const Received& { return self.message; });
  reply.def_readonly("outcome", &Reply::outcome)
      .def_readonly("timed_out", &Reply::timed_out)
      .def_property_readonly("payload", [](const Reply& self) { return bytes_of(self.payload); })
      .def("json", [](const Reply& self) { return decoded_json(self.payload); });

  py::class_<PyDelivery> delivery(module, "Delivery", "A message being handled, held until it is settled.");
  add_message_fields(delivery, [](const PyDelivery& self) -> const Received& { return self.message(); });
  delivery.def_property_readonly("payload", &PyDelivery::payload)
      .def("json", [](PyDelivery& self) { return decoded_json(view_of(self.payload())); })
      .def("view", &PyDelivery::view)
      .def("payload_intact", &PyDelivery::payload_intact)
      .def("reply", &PyDelivery::reply, py::arg("outcome"), py::arg("payload") = py::none(), py::kw_only(),
           py::arg("version") = py::none(), py::arg("request_id") = py::none())
      .def("send", &PyDelivery::send, py::arg("name"), py::arg("payload") = py::none(), py::kw_only(),
           py::arg("version") = py::none(), py::arg("request_id") = py::none())
      .def("send_with_replies", &PyDelivery::send_with_replies, py::arg("name"), py::arg("payload"),
           py::arg("on_reply"), py::arg("timeout"), py::arg("version"), py::arg("request_id"))
      .def("ack", &PyDelivery::ack)
      .def("release", &PyDelivery::release)
      .def("reject", &PyDelivery::reject)
      .def("renew", &PyDelivery::renew)
      .def_property_readonly("settled", &PyDelivery::settled);

  py::class_<PyService>(module, "Service", "An instance of a service type on a bus.")
      .def("on", &PyService::on, py::arg("name"), py::arg("version"), py::arg("handler"), py::arg("settles_on_return"))
      .def("start", &PyService::start)
      .def("stop", &PyService::stop)
      .def("send", &PyService::send, py::arg("name"), py::arg("payload") = py::none(), py::kw_only(),
           py::arg("version") = py::none(), py::arg("request_id") = py::none(),
           "Sends a command, fire-and-forget; waits up to send_timeout for room in a full queue.")
      .def("try_send", &PyService::try_send, py::arg("name"), py::arg("payload") = py::none(), py::kw_only(),
           py::arg("version") = py::none(), py::arg("request_id") = py::none(),
           "As send(), but never waits: a full queue raises QueueFullError at once.")
      .def("send_with_replies", &PyService::send_with_replies, py::arg("name"), py::arg("payload"), py::arg("on_reply"),
           py::arg("timeout"), py::arg("version"), py::arg("request_id"))
      .def("request", &PyService::request, py::arg("name"), py::arg("payload") = py::none(), py::kw_only(),
           py::arg("timeout") = 1.0, py::arg("version") = py::none(), py::arg("request_id") = py::none(),
           "Sends a command and waits (GIL released) for its first reply; exobus.TimeoutError.")
      .def_property_readonly("service_type", &PyService::service_type)
      .def_property_readonly("instance", &PyService::instance);

  module.def("connect", &connect, py::arg("bus"), py::arg("service"), py::arg("runtime_dir"), py::arg("send_timeout"),
             py::arg("handler_threads"), py::arg("wait_mode"));

  py::class_<ObservedMessage>(module, "ObservedMessage", "A message a played type of a test bus received.")
      .def_readonly("receiver", &ObservedMessage::receiver)
      .def_readonly("message", &ObservedMessage::message);

  py::class_<PyTestBus>(module, "TestBus", "A bus inside this process, for the tests of a service.")
      .def(py::init([](const std::string& application_file) {
             py::gil_scoped_release nogil;
             return std::make_unique<PyTestBus>(take(TestBus::create(application_file)));
           }),
           py::arg("application_file"))
      .def(
          "connect",
          [](py::object self, const std::string& service_type) {
            TestBus& bus = self.cast<PyTestBus&>().bus();
            std::unique_ptr<Service> service;
            {
              py::gil_scoped_release nogil;
              service = take(bus.connect(ServiceOptions{.service = service_type, .copy_payloads = false}));
            }
            return std::make_unique<PyService>(std::move(service), self);
          },
          py::arg("service_type"))
      .def(
          "send",
          [](PyTestBus& self, const std::string& sender, const std::string& name, const py::object& payload,
             std::optional<double> version, const std::optional<std::string>& request_id) {
            SendOptions options = send_options(version, request_id);
            PayloadText text(payload);
            py::gil_scoped_release nogil;
            check(self.bus().send(sender, name, text.text(), options));
          },
          py::arg("sender"), py::arg("name"), py::arg("payload") = py::none(), py::kw_only(),
          py::arg("version") = py::none(), py::arg("request_id") = py::none())
      .def(
          "request",
          [](PyTestBus& self, const std::string& sender, const std::string& name, const py::object& payload,
             double timeout, std::optional<double> version, const std::optional<std::string>& request_id) {
            SendOptions options = send_options(version, request_id);
            PayloadText text(payload);
            std::chrono::milliseconds wait = milliseconds_of(timeout);
            py::gil_scoped_release nogil;
            return take(self.bus().request(sender, name, text.text(), wait, options));
          },
          py::arg("sender"), py::arg("name"), py::arg("payload") = py::none(), py::kw_only(), py::arg("timeout") = 1.0,
          py::arg("version") = py::none(), py::arg("request_id") = py::none())
      .def(
          "on",
          [](PyTestBus& self, const std::string& receiver, std::string name, py::function handler) {
            self.bus().on(receiver, std::move(name), delivery_handler(std::move(handler), true));
          },
          py::arg("receiver"), py::arg("name"), py::arg("handler"))
      .def("received", [](PyTestBus& self) { return self.bus().received(); })
      .def(
          "wait_for",
          [](PyTestBus& self, const std::string& name, double timeout) {
            std::chrono::milliseconds wait = milliseconds_of(timeout);
            py::gil_scoped_release nogil;
            return take(self.bus().wait_for(name, wait));
          },
          py::arg("name"), py::kw_only(), py::arg("timeout") = 1.0)
      .def("reset", [](PyTestBus& self) {
        py::gil_scoped_release nogil;  // a played type's handler may be waiting for the GIL
        self.bus().reset();
      });
}
