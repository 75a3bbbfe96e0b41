// The control protocol's encoding and decoding, without sockets.

#include "exobus/control/control_protocol.hpp"

#include <gtest/gtest.h>

#include <string>

namespace exobus::control {
namespace {

using Code = ErrorCode;

Request round_trip(const Request& request) {
  Result<std::string> encoded = encode_request(request);
  EXPECT_TRUE(encoded.ok()) << encoded.error().message;
  Result<Request> decoded = decode_request(encoded.value());
  EXPECT_TRUE(decoded.ok()) << decoded.error().message;
  return decoded.value();
}

TEST(ControlProtocol, RegisterRequestRoundTrips) {
  const Request request = RegisterRequest{"users", 4242, "6f1c0d9e-5b7a-4f1e-9a43-0e3c2b9d8a11"};
  EXPECT_EQ(round_trip(request), request);
}

TEST(ControlProtocol, StatusRequestRoundTrips) { EXPECT_EQ(round_trip(StatusRequest{}), Request{StatusRequest{}}); }

TEST(ControlProtocol, CommandRequestRoundTripsWithArguments) {
  const Request request = CommandRequest{"dlq", JsonText::parse(R"({"action":"list","limit":10})").value()};
  EXPECT_EQ(round_trip(request), request);
}

TEST(ControlProtocol, CommandWithoutArgsHasEmptyObject) {
  const Result<Request> decoded = decode_request(R"({"protocol":2,"request":"command","name":"dlq"})");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(std::get<CommandRequest>(decoded.value()).args.str(), "{}");
}

TEST(ControlProtocol, OkReplyRoundTripsItsBody) {
  const JsonText body = JsonText::parse(R"({"slot":3,"generation":7})").value();
  const Reply decoded = decode_reply(encode_reply(body));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded.value(), body);
}

TEST(ControlProtocol, ErrorReplyRoundTripsCodeAndMessage) {
  const Reply decoded = decode_reply(encode_reply(Error{Code::permission_denied, "user 'x' may not"}));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, Code::permission_denied);
  EXPECT_EQ(decoded.error().message, "user 'x' may not");
}

TEST(ControlProtocol, MalformedJsonIsAProtocolError) {
  const Result<Request> decoded = decode_request("{\"protocol\":2,");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, Code::protocol);
  EXPECT_NE(decoded.error().message.find("malformed"), std::string::npos) << decoded.error().message;
}

TEST(ControlProtocol, TrailingDataIsAProtocolError) {
  EXPECT_EQ(decode_request(R"({"protocol":2,"request":"status"} {})").error().code, Code::protocol);
}

TEST(ControlProtocol, NonObjectIsAProtocolError) {
  EXPECT_EQ(decode_request("[1,2,3]").error().code, Code::protocol);
  EXPECT_EQ(decode_request("").error().code, Code::protocol);
}

TEST(ControlProtocol, MissingVersionIsAProtocolError) {
  EXPECT_EQ(decode_request(R"({"request":"status"})").error().code, Code::protocol);
}

TEST(ControlProtocol, WrongVersionRequestNamesBothVersions) {
  const Result<Request> decoded = decode_request(R"({"protocol":1,"request":"status"})");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, Code::version_mismatch);
  EXPECT_NE(decoded.error().message.find("version 1"), std::string::npos) << decoded.error().message;
  EXPECT_NE(decoded.error().message.find("speaks 2"), std::string::npos) << decoded.error().message;
}

TEST(ControlProtocol, WrongVersionReplyNamesBothVersions) {
  const Reply decoded = decode_reply(R"({"protocol":7,"ok":true,"body":{}})");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, Code::version_mismatch);
  EXPECT_NE(decoded.error().message.find("version 7"), std::string::npos) << decoded.error().message;
  EXPECT_NE(decoded.error().message.find("speaks 2"), std::string::npos) << decoded.error().message;
}

TEST(ControlProtocol, UnknownRequestIsAProtocolError) {
  const Result<Request> decoded = decode_request(R"({"protocol":2,"request":"explode"})");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, Code::protocol);
  EXPECT_NE(decoded.error().message.find("'explode'"), std::string::npos);
}

TEST(ControlProtocol, RegisterWithoutPidIsAProtocolError) {
  EXPECT_EQ(
      decode_request(R"({"protocol":2,"request":"register","service_type":"a","instance_nonce":"n"})").error().code,
      Code::protocol);
  EXPECT_EQ(decode_request(R"({"protocol":2,"request":"register","service_type":"a","instance_nonce":"n","pid":-4})")
                .error()
                .code,
            Code::protocol);
}

TEST(ControlProtocol, RegisterWithControlCharactersIsRefused) {
  EXPECT_FALSE(encode_request(RegisterRequest{"bad\ntype", 1, "n"}).ok());
  EXPECT_EQ(
      decode_request(R"({"protocol":2,"request":"register","service_type":"a\u0001","instance_nonce":"n","pid":4})")
          .error()
          .code,
      Code::protocol);
}

TEST(ControlProtocol, InvalidCommandNameIsRefused) {
  EXPECT_FALSE(encode_request(CommandRequest{"rm -rf", JsonText()}).ok());
  EXPECT_FALSE(encode_request(CommandRequest{"", JsonText()}).ok());
}

TEST(ControlProtocol, CommandArgsMustBeAnObject) {
  EXPECT_FALSE(encode_request(CommandRequest{"dlq", JsonText::parse("[1]").value()}).ok());
  EXPECT_EQ(decode_request(R"({"protocol":2,"request":"command","name":"dlq","args":3})").error().code, Code::protocol);
}

TEST(ControlProtocol, OversizedDatagramIsRefused) {
  const std::string big = R"({"protocol":2,"request":"status","pad":")" + std::string(kMaxDatagramSize, 'x') + "\"}";
  const Result<Request> decoded = decode_request(big);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, Code::protocol);
  EXPECT_NE(decoded.error().message.find(std::to_string(kMaxDatagramSize)), std::string::npos);
}

TEST(ControlProtocol, OversizedRequestIsNotEncoded) {
  const JsonText args = JsonText::parse("{\"blob\":\"" + std::string(kMaxDatagramSize, 'x') + "\"}").value();
  const Result<std::string> encoded = encode_request(CommandRequest{"dlq", args});
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.error().code, Code::protocol);
}

TEST(ControlProtocol, OversizedReplyBodyBecomesAnErrorReply) {
  const JsonText body = JsonText::parse("{\"blob\":\"" + std::string(kMaxDatagramSize, 'x') + "\"}").value();
  const std::string encoded = encode_reply(body);
  EXPECT_LE(encoded.size(), kMaxDatagramSize);
  const Reply decoded = decode_reply(encoded);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, Code::protocol);
}

TEST(ControlProtocol, DeepNestingIsRefusedBeforeParsing) {
  const std::string deep = R"({"protocol":2,"request":"command","name":"x","args":{"a":)" + std::string(20000, '[') +
                           std::string(20000, ']') + "}}";
  const Result<Request> decoded = decode_request(deep);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, Code::protocol);
  EXPECT_NE(decoded.error().message.find("nested"), std::string::npos) << decoded.error().message;
}

TEST(ControlProtocol, BracketsInsideStringsDoNotCountAsNesting) {
  EXPECT_EQ(json_nesting_depth(R"({"a":"[[[[\"{{{{"})"), 1u);
}

TEST(ControlProtocol, ErrorReplyWithUnknownCodeIsAProtocolError) {
  const Reply decoded = decode_reply(R"({"protocol":2,"ok":false,"error":{"code":"boom","message":"m"}})");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, Code::protocol);
}

TEST(ControlProtocol, EveryCodeNameRoundTrips) {
  for (const Code code : {Code::daemon_not_running, Code::permission_denied, Code::version_mismatch, Code::refused,
                          Code::protocol, Code::io}) {
    EXPECT_EQ(error_code_from_string(to_string(code)), code);
  }
}

}  // namespace
}  // namespace exobus::control
