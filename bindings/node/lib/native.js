'use strict';
// The addon: build/exobus.node beside this package's lib/, where CMake put it (inside
// ExoBus's build, or when npm installed the package).
module.exports = require('../build/exobus.node');
