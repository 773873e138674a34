// Finding out that an HTTP client has gone away while its request is being answered. cpp-httplib
// 0.11 (Debian 12's) does not hand the connection to handlers, so the socket is found by its
// addresses.
#pragma once

#include <string>

namespace herd::server {

// The open socket of this process whose peer address and port and local port are these (a
// request's remote_addr, remote_port, local_port). -1 if none.
int FindConnection(const std::string& remote_addr, int remote_port, int local_port);

// Whether the peer has closed its side (or the connection broke). A client that pipelined its
// next request has sent data, not a close, so it still counts as there.
bool PeerClosed(int fd);

}  // namespace herd::server
