// Package mcast is the host side of multicast listener protocols that
// IGMP (RFC 3376, RFC 2236, RFC 1112) and MLD (RFC 3810, RFC 2710) share:
// the per-socket filter merge, state-change reports repeated Robustness
// times, answers to general, group-specific and group-and-source-specific
// queries with their bounds and delay floor, and the compatibility modes an
// older querier forces, with its querier-present timer.
//
// The two protocols differ only in their messages and a few addresses, so
// packages igmp and mld are thin codecs over one Host: they parse what
// arrives into a Query, and describe their messages with a Wire, which
// builds the reports the Host decides to send.
//
// Versions are numbered as IGMP numbers them. V3 is the source-filtering
// protocol (IGMPv3, MLDv2), V2 the any-source one with leave messages
// (IGMPv2, MLDv1), V1 IGMPv1, which has no leave and which MLD never
// reaches.
package mcast
