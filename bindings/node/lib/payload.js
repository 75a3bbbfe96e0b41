'use strict';
// A payload as the bus carries it: JSON text. A Buffer (or any Uint8Array) is JSON text
// already and goes to the addon as it is, read where it lies; undefined and null are no
// payload; any other value (an object, an array, a string, a number) is encoded with JSON.
function encoded(payload) {
  if (payload === undefined || payload === null || payload instanceof Uint8Array) return payload;
  return JSON.stringify(payload);
}

/** The JSON value of a payload's text; undefined for no payload. */
function decoded(text) {
  return text === '' ? undefined : JSON.parse(text);
}

module.exports = { encoded, decoded };
