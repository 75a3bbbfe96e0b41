#pragma once
// A message written in place: the application fills its payload straight in shared
// memory, and the library neither copies it nor keeps the caller's buffer.
//
//   exobus::Loan loan = service->loan("file.chunk", text.size()).value();
//   std::memcpy(loan.payload().data(), text.data(), text.size());  // all payload().size() bytes
//   loan.send();
//
// send() checks the payload (JSON, the schemas of the name and version) where it lies,
// waits up to send_timeout for room in full queues, and spends the loan whatever its
// result. A loan not sent is given back when destroyed. It must not outlive its Service.
#include <cstdint>
#include <span>

#include "exobus/error.hpp"

namespace exobus {

namespace client {
class ServiceCore;
class Sender;
}  // namespace client

class Loan {
 public:
  Loan() = default;
  Loan(Loan&& other) noexcept;
  Loan& operator=(Loan&& other) noexcept;
  ~Loan();
  std::span<char> payload() const { return payload_; }
  Result<void> send();

 private:
  friend class client::Sender;
  client::ServiceCore* core_ = nullptr;  // null once sent or given back
  std::uint64_t chunk_ = 0;
  std::uint32_t length_ = 0;
  const void* version_route_ = nullptr;  // the schemas of its name and version
  const void* route_ = nullptr;
  std::span<char> payload_;
};

}  // namespace exobus
