// Package ipv6 holds the IPv6 wire formats: the fixed header (RFC 8200),
// the extension header walk (hop-by-hop and destination options, routing,
// fragment), ICMPv6 (RFC 4443), Neighbor Discovery messages and options
// (RFC 4861, RFC 4862, RFC 8106), MLDv1 and MLDv2 (RFC 2710, RFC 3810), and
// address helpers (solicited-node groups, EUI-64 and RFC 7217 interface
// identifiers, multicast scopes).
//
// It is the pure bottom of the stack's IPv6 side, the counterpart of the
// wire code in package ipv4: views over []byte that parse and validate
// without allocating and return one sentinel error per reason (so every
// drop can be counted), and Put functions that write into buffers the
// caller owns. It keeps no state and imports nothing from the stack, the
// devices or the buffer pool; neighbour caches, duplicate address
// detection, reassembly and sockets live above it.
//
// ICMPv6 builders write everything but the checksum, because several
// messages (NDP) are finished by appending options; PutChecksum completes a
// message over the pseudo-header of the addresses it is sent with.
//
// Deliberately left out: jumbograms (RFC 2675; a zero payload length with a
// hop-by-hop header is refused and the Jumbo Payload option is unknown),
// mobility (RFC 6275: the Mobility header, Home Address option and type 2
// routing header are not processed), segment routing (RFC 8754) and RPL
// source routes (a host never forwards, so every routing header with
// segments left is refused), AH and ESP (reported as an upper layer the
// stack does not know), and the NDP options a host without those features
// does not need (route information, DNSSL, PREF64, nonces and SEND).
package ipv6
