'use strict';
// A reply to a command this service sent: every field of the message, its outcome, and its
// payload as JSON (payload), text and bytes.
const { decoded } = require('./payload');

class Reply {
  constructor(fields) {
    /** The reply's name in this service's terms. */
    this.outcome = fields.name;
    this.name = fields.name;
    this.version = fields.version;
    this.id = fields.id;
    this.requestId = fields.requestId;
    /** The id of the command it answers. */
    this.responseTo = fields.responseTo;
    this.sender = fields.sender;
    this.deliveries = fields.deliveries;
    /** The payload's JSON text ('' for none). */
    this.text = fields.text;
  }
  get redelivered() {
    return this.deliveries > 0;
  }
  /** The payload's JSON value, undefined for none. */
  get payload() {
    return decoded(this.text);
  }
  get buffer() {
    return Buffer.from(this.text);
  }
}

module.exports = { Reply };
