'use strict';
// One Error subclass per exobus::ErrorCode (core/model/include/exobus/error.hpp), all under
// ExobusError, made from the codes the addon reports, so that a code added to the library has
// its class at once. index.d.ts names them for readers and TypeScript.
const native = require('./native');

class ExobusError extends Error {
  /** @param {string} message what went wrong and what to do about it */
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}
// `code` is the ErrorCode's name ('queue_full'), as Node.js's own errors carry a string code;
// `errno` its number.
Object.defineProperties(ExobusError.prototype, {
  code: { value: '', writable: true, configurable: true },
  errno: { value: 0, writable: true, configurable: true },
});

/** queue_full: QueueFullError; config_error: ConfigError. */
function className(codeName) {
  const words = codeName.split('_');
  const name = words.map((word) => word[0].toUpperCase() + word.slice(1)).join('');
  return words[words.length - 1] === 'error' ? name : `${name}Error`;
}

const classes = { ExobusError };
const byNumber = new Map();
for (const [number, codeName] of native.errorCodes()) {
  const name = className(codeName);
  // A named class expression, so that stack traces and util.inspect show its name.
  const made = { [name]: class extends ExobusError {} }[name];
  Object.defineProperties(made.prototype, {
    code: { value: codeName, writable: true, configurable: true },
    errno: { value: number, writable: true, configurable: true },
  });
  classes[name] = made;
  byNumber.set(number, made);
}

native.setErrorFactory((number, message) => new (byNumber.get(number) ?? ExobusError)(message));

module.exports = classes;
