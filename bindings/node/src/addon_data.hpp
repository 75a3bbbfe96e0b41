#pragma once
// What the addon keeps per Node.js environment (the main thread's, or a worker's): the error
// factory lib/errors.js registered and the Delivery class's constructor.
#include <napi.h>

namespace exobus::node {

struct AddonData {
  Napi::FunctionReference make_error;  // (code, message) => an Error subclass instance
  Napi::FunctionReference delivery_class;
  Napi::FunctionReference service_class;

  static AddonData& of(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
};

}  // namespace exobus::node
