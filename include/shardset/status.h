// Status and Result<T>: how every library call reports failure.
//
// A Status is either OK (costs one null pointer) or carries a code and a
// one-line message. Messages name the file, the sample and what to do, so the
// CLI can print them unchanged. Library code never throws and never exits:
// the CLI maps codes to exit codes (docs/cli.md), the Python edge maps them to
// exceptions.
//
// Thread safety: Status and Result are values; distinct objects may be used
// from different threads, and they are cheap to move between threads.
#ifndef SHARDSET_STATUS_H_
#define SHARDSET_STATUS_H_

#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace shardset {

class [[nodiscard]] Status {
 public:
  // The codes are part of the CLI contract (exit codes in docs/cli.md); only
  // append new ones.
  enum class Code : int {
    kOk = 0,
    kNotFound = 1,         // a file, key, ordinal or field that does not exist
    kCorruption = 2,       // bytes on disk do not match their checksum or structure
    kInvalidArgument = 3,  // the caller asked for something malformed
    kIOError = 4,          // the operating system refused (permission, disk full, ...)
    kNotSupported = 5,     // a valid request this build or format cannot serve
    kAlreadyExists = 6,    // refusing to overwrite
    kResourceExhausted = 7,  // an input exceeds a configured bound
  };

  Status() noexcept = default;
  Status(const Status& other) : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status InvalidArgument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  // An IOError for a failed system call: "<context>: <strerror(errno_value)>".
  static Status FromErrno(std::string_view context, int errno_value);
  static Status NotSupported(std::string msg) {
    return Status(Code::kNotSupported, std::move(msg));
  }
  static Status AlreadyExists(std::string msg) {
    return Status(Code::kAlreadyExists, std::move(msg));
  }
  static Status ResourceExhausted(std::string msg) {
    return Status(Code::kResourceExhausted, std::move(msg));
  }

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  bool IsNotFound() const { return code() == Code::kNotFound; }
  bool IsCorruption() const { return code() == Code::kCorruption; }
  // The message alone, without the code name.
  const std::string& message() const;
  // "Corruption: <message>", or "OK".
  std::string ToString() const;
  // The same status with "<prefix>: " in front of the message; OK stays OK.
  Status WithPrefix(std::string_view prefix) const;

 private:
  struct Rep {
    Code code;
    std::string message;
  };
  Status(Code code, std::string msg) : rep_(std::make_unique<Rep>(Rep{code, std::move(msg)})) {}
  std::unique_ptr<Rep> rep_;
};

std::string_view CodeName(Status::Code code);

// Either a T or a non-OK Status. Accessing the value of an error is a bug
// (asserted), so callers check ok() first or use SHARDSET_ASSIGN_OR_RETURN.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "Result built from an OK status has no value");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const& { return status_; }
  Status status() && { return std::move(status_); }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

#define SHARDSET_CONCAT_IMPL(a, b) a##b
#define SHARDSET_CONCAT(a, b) SHARDSET_CONCAT_IMPL(a, b)

#define SHARDSET_RETURN_IF_ERROR(expr)           \
  do {                                           \
    ::shardset::Status _st = (expr);             \
    if (!_st.ok()) return _st;                   \
  } while (0)

#define SHARDSET_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()

// SHARDSET_ASSIGN_OR_RETURN(auto x, MakeX()); returns the error from the
// enclosing function when MakeX() fails.
#define SHARDSET_ASSIGN_OR_RETURN(lhs, expr) \
  SHARDSET_ASSIGN_OR_RETURN_IMPL(SHARDSET_CONCAT(_result_, __LINE__), lhs, expr)

}  // namespace shardset

#endif  // SHARDSET_STATUS_H_
