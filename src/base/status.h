// Status and Result<T>: errors at I/O, tokenizer and HTTP boundaries are values, not exceptions.
#pragma once

#include <fmt/format.h>

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace herd {

class Status {
 public:
  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }
  template <typename... Args>
  static Status Errorf(fmt::format_string<Args...> f, Args&&... args) {
    return Status(fmt::format(f, std::forward<Args>(args)...));
  }

  bool ok() const { return !message_.has_value(); }
  const std::string& message() const {
    static const std::string kOk = "OK";
    return message_ ? *message_ : kOk;
  }

 private:
  explicit Status(std::string message) : message_(std::move(message)) {}
  std::optional<std::string> message_;
};

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {
    if (std::get<Status>(v_).ok()) v_ = Status::Error("Result constructed from OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // A reference, so `r.status().message()` stays valid as long as r does.
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace herd

#define HERD_CONCAT_INNER(a, b) a##b
#define HERD_CONCAT(a, b) HERD_CONCAT_INNER(a, b)

// Returns early with the status if `expr` (a Status) is not OK.
#define HERD_RETURN_IF_ERROR(expr) \
  do {                             \
    ::herd::Status _st = (expr);   \
    if (!_st.ok()) return _st;     \
  } while (0)

// `HERD_ASSIGN_OR_RETURN(auto x, Foo());` unwraps a Result or returns its status.
#define HERD_ASSIGN_OR_RETURN(lhs, rexpr) \
  HERD_ASSIGN_OR_RETURN_IMPL(HERD_CONCAT(_res_, __LINE__), lhs, rexpr)
#define HERD_ASSIGN_OR_RETURN_IMPL(res, lhs, rexpr) \
  auto res = (rexpr);                               \
  if (!res.ok()) return res.status();               \
  lhs = std::move(res).value()
