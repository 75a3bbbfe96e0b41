'use strict';
// exobus: services on an ExoBus bus, with promises. README.md has the API; index.d.ts its
// types. The ExoRelay-compatible layer is exobus/exorelay.
const { connect, Service, Delivery, Reply } = require('./lib/service');
const errors = require('./lib/errors');

module.exports = { connect, Service, Delivery, Reply, ...errors };
