package gonet

import "github.com/tapnet/tapnet/internal/udpsock"

// EndpointOf returns the socket behind c, for tests that look at its
// receive queue (drops, effective buffer size).
func EndpointOf(c *UDPConn) *udpsock.Endpoint { return &c.ep }
