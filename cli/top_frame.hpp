#pragma once
// One frame of `exobus top`: the bus between two status documents taken `seconds` apart,
// as text. Rates are the counters' growth over that time; the rest is the later document.
#include <rapidjson/document.h>

#include <string>

namespace exobus::cli {

struct TopSample {
  rapidjson::Document status;  // the daemon's status document
  double at = 0;               // seconds on a monotonic clock
};

std::string render_top_frame(const TopSample& before, const TopSample& now);

}  // namespace exobus::cli
