#include "shardset/status.h"

#include <cstring>

#include <fmt/format.h>

namespace shardset {

Status Status::FromErrno(std::string_view context, int errno_value) {
  return IOError(fmt::format("{}: {}", context, std::strerror(errno_value)));
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return fmt::format("{}: {}", CodeName(code()), rep_->message);
}

Status Status::WithPrefix(std::string_view prefix) const {
  if (ok()) return Status();
  return Status(code(), fmt::format("{}: {}", prefix, rep_->message));
}

std::string_view CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kNotFound: return "NotFound";
    case Status::Code::kCorruption: return "Corruption";
    case Status::Code::kInvalidArgument: return "InvalidArgument";
    case Status::Code::kIOError: return "IOError";
    case Status::Code::kNotSupported: return "NotSupported";
    case Status::Code::kAlreadyExists: return "AlreadyExists";
    case Status::Code::kResourceExhausted: return "ResourceExhausted";
  }
  return "Unknown";
}

}  // namespace shardset
