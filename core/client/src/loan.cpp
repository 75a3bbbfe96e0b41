// A loan owns a chunk the application fills in place until it is sent or given back.
#include <utility>

#include "service_core.hpp"

namespace exobus {

Loan::Loan(Loan&& other) noexcept
    : core_(std::exchange(other.core_, nullptr)),
      chunk_(other.chunk_),
      length_(other.length_),
      version_route_(other.version_route_),
      route_(other.route_),
      payload_(other.payload_) {}

Loan& Loan::operator=(Loan&& other) noexcept {
  Loan taken(std::move(other));  // this loan's old chunk is given back when `taken` goes
  std::swap(core_, taken.core_);
  std::swap(chunk_, taken.chunk_);
  std::swap(length_, taken.length_);
  std::swap(version_route_, taken.version_route_);
  std::swap(route_, taken.route_);
  std::swap(payload_, taken.payload_);
  return *this;
}

Loan::~Loan() {
  if (core_ != nullptr) core_->sender.abandon_loan(*this);
}

Result<void> Loan::send() {
  if (core_ == nullptr) return Error{ErrorCode::closed, "this loan was already sent or given back"};
  return core_->sender.send_loan(*this);
}

}  // namespace exobus
