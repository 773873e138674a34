// The licence policy for training data: every source must declare an SPDX licence that is on the
// allow-list, or that the caller allows explicitly (`--allow-license X`).
//
// Default allow-list (SPDX ids, compared case-insensitively):
//   public domain  CC-PDDC, LicenseRef-PublicDomain, Unlicense, CC0-1.0, PDDL-1.0
//   attribution    CC-BY-<version>, CC-BY-SA-<version> (e.g. CC-BY-4.0, CC-BY-SA-3.0; the NC and
//                  ND variants are not allowed), MIT, Apache-2.0, BSD-2-Clause, BSD-3-Clause
//   documentation  GFDL-*, GPL-*, LGPL-* (e.g. GFDL-1.3-or-later, GPL-3.0-only)
// Never allowed, not even explicitly: an empty licence, "unknown", "NOASSERTION", "NONE".
// Expressions: "A OR B" is allowed when any of its ids is, "A AND B" when all are (flat; mixing
// AND with OR, "WITH" and parentheses are refused unless the whole expression is allowed
// explicitly). An explicit allowance matches the whole expression or a single id.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace herd {

struct LicensePolicy {
  std::vector<std::string> extra_allowed;  // --allow-license values
};

// OK, or an error saying why `license` is refused (the caller adds which source and shard).
Status CheckLicense(std::string_view license, const LicensePolicy& policy = {});

// The default allow-list, for help texts and messages.
std::string DescribeDefaultLicenses();

}  // namespace herd
