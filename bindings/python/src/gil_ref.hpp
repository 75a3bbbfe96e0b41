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

// A Python thread state that one of the library's threads keeps from its first call into
// Python until it ends, when it is deleted, unless Python is finalizing (no thread state
// may be deleted then; the interpreter clears them all itself).
// With it, the thread may keep one Python object of its own for reuse (spare).
struct KeptThreadState {
  bool kept = false;
  PyObject* spare = nullptr;  // a strong reference, or null
  ~KeptThreadState() {
    if (!kept || _Py_IsFinalizing()) return;
    pybind11::gil_scoped_acquire gil;
    Py_XDECREF(spare);
    gil.dec_ref();  // gil's own release then deletes the state
  }
};

// The GIL, taken by one of the library's own threads (receiving, handler, reply threads),
// never by a Python thread. Such a thread calls into Python once per message: it keeps its
// thread state (KeptThreadState), where gil_scoped_acquire alone would make one and delete
// it at every call (a fresh frame stack each time: the larger part of a message's cost).
class LibraryThreadGil {
 public:
  LibraryThreadGil() {
    if (!kept_state.kept) {
      gil_.inc_ref();  // the state outlives this guard: its count no longer drops to zero here
      kept_state.kept = true;
    }
  }
  // The thread's spare object (see KeptThreadState); touched under this guard only.
  PyObject*& spare() { return kept_state.spare; }

 private:
  static inline thread_local KeptThreadState kept_state;
  pybind11::gil_scoped_acquire gil_;
};

}  // namespace exobus::python
