#pragma once
// A Python object kept by C++ code that may drop it on a thread without the GIL: a handler
// or reply callback lives in a std::function that the library copies and destroys on its
// receiving and reply threads, and in a Service destroyed with the GIL released. Shared
// through std::shared_ptr, copies touch no Python reference count; the last owner releases
// the object under the GIL, whichever thread it is on.
#include <pybind11/pybind11.h>

#include <memory>
#include <utility>

namespace exobus::python {

class GilRef {
 public:
  explicit GilRef(pybind11::object object) : object_(std::move(object)) {}
  GilRef(const GilRef&) = delete;
  GilRef& operator=(const GilRef&) = delete;
  ~GilRef() {
    pybind11::gil_scoped_acquire gil;
    object_ = pybind11::object();
  }
  // Precondition: the caller holds the GIL.
  const pybind11::object& get() const { return object_; }

 private:
  pybind11::object object_;
};

inline std::shared_ptr<GilRef> keep(pybind11::object object) { return std::make_shared<GilRef>(std::move(object)); }

}  // namespace exobus::python
