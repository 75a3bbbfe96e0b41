// web: see web_client.hpp.
#include <chrono>
#include <cstdio>

#include "run_until_signal.hpp"
#include "web_client.hpp"

int main() {
  auto web = demo::connect_or_exit("web");
  return demo::run_web(*web, stdout, std::chrono::seconds(10));
}
