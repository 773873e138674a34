#include "train/license.h"

#include <algorithm>
#include <cctype>

namespace herd {
namespace {

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(" \t") - b + 1));
}

// "4.0", "3.0", "2.5-IGO"? Only digits and dots: a version number.
bool IsVersion(std::string_view s) {
  return !s.empty() && std::isdigit(static_cast<unsigned char>(s.front())) &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
         });
}

bool IsDefaultAllowed(const std::string& id) {  // id upper-cased
  for (const char* exact : {"CC-PDDC", "LICENSEREF-PUBLICDOMAIN", "UNLICENSE", "CC0-1.0",
                            "PDDL-1.0", "MIT", "APACHE-2.0", "BSD-2-CLAUSE", "BSD-3-CLAUSE"})
    if (id == exact) return true;
  if (id.starts_with("CC-BY-SA-")) return IsVersion(std::string_view(id).substr(9));
  if (id.starts_with("CC-BY-")) return IsVersion(std::string_view(id).substr(6));
  for (const char* family : {"GFDL-", "GPL-", "LGPL-"})
    if (id.starts_with(family) && id.size() > std::string_view(family).size()) return true;
  return false;
}

bool IsExplicitlyAllowed(const std::string& id, const LicensePolicy& policy) {
  return std::any_of(policy.extra_allowed.begin(), policy.extra_allowed.end(),
                     [&](const std::string& a) { return Upper(Trim(a)) == id; });
}

bool IsUndeclared(const std::string& id) {
  return id.empty() || id == "UNKNOWN" || id == "NOASSERTION" || id == "NONE";
}

// Splits on " OP " (OP already upper-cased in `expr`).
std::vector<std::string> SplitOn(const std::string& expr, const std::string& op) {
  std::vector<std::string> parts;
  const std::string sep = " " + op + " ";
  size_t pos = 0;
  for (size_t next; (next = expr.find(sep, pos)) != std::string::npos; pos = next + sep.size())
    parts.push_back(Trim(std::string_view(expr).substr(pos, next - pos)));
  parts.push_back(Trim(std::string_view(expr).substr(pos)));
  return parts;
}

}  // namespace

Status CheckLicense(std::string_view license, const LicensePolicy& policy) {
  const std::string expr = Upper(Trim(license));
  if (IsUndeclared(expr))
    return Status::Errorf(
        "licence {} is not a declared licence; every source must declare an "
        "SPDX licence",
        license.empty() ? "(missing)" : fmt::format("'{}'", license));
  if (IsExplicitlyAllowed(expr, policy)) return Status::Ok();
  const auto refused = [&] {
    return Status::Errorf(
        "licence '{}' is not on the allow-list ({}); pass --allow-license "
        "'{}' to accept it",
        license, DescribeDefaultLicenses(), Trim(license));
  };
  const bool has_or = expr.find(" OR ") != std::string::npos;
  const bool has_and = expr.find(" AND ") != std::string::npos;
  if ((has_or && has_and) || expr.find('(') != std::string::npos ||
      expr.find(" WITH ") != std::string::npos)
    return refused();
  const auto parts = SplitOn(expr, has_or ? "OR" : "AND");
  const auto ok = [&](const std::string& id) {
    return !IsUndeclared(id) && (IsDefaultAllowed(id) || IsExplicitlyAllowed(id, policy));
  };
  const bool allowed = has_or ? std::any_of(parts.begin(), parts.end(), ok)
                              : std::all_of(parts.begin(), parts.end(), ok);
  return allowed ? Status::Ok() : refused();
}

std::string DescribeDefaultLicenses() {
  return "CC-PDDC, LicenseRef-PublicDomain, Unlicense, CC0-1.0, PDDL-1.0, CC-BY-<v>, "
         "CC-BY-SA-<v>, MIT, Apache-2.0, BSD-2-Clause, BSD-3-Clause, GFDL-*, GPL-*, LGPL-*";
}

}  // namespace herd
