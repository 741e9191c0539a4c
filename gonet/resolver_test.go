package gonet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// serveDNS answers A queries on s's port 53: host.tapnet.test. is
// 192.0.2.80, big.tapnet.test. comes back truncated, anything else is
// NXDOMAIN.
func serveDNS(t *testing.T, s *stack.Stack) {
	c, err := ListenUDP(s, "udp", &net.UDPAddr{Port: 53})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil || len(m.Questions) != 1 {
				continue
			}
			q := m.Questions[0]
			m.Header.Response, m.Header.Authoritative = true, true
			switch {
			case q.Name.String() == "big.tapnet.test.":
				m.Header.Truncated = true
			case q.Name.String() == "host.tapnet.test." && q.Type == dnsmessage.TypeA:
				m.Answers = []dnsmessage.Resource{{
					Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
					Body:   &dnsmessage.AResource{A: [4]byte{192, 0, 2, 80}},
				}}
			case q.Name.String() == "host.tapnet.test.":
			default:
				m.Header.RCode = dnsmessage.RCodeNameError
			}
			out, err := m.Pack()
			if err == nil {
				c.WriteToUDPAddrPort(out, from)
			}
		}
	}()
}

func TestResolverOverTapnet(t *testing.T) {
	client, server := pair(t, tap.PipeOptions{})
	serveDNS(t, server)
	r := Resolver(client, netip.MustParseAddrPort("192.0.2.1:53"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ips, err := r.LookupNetIP(ctx, "ip4", "host.tapnet.test.")
	if err != nil || len(ips) != 1 || ips[0] != netip.MustParseAddr("192.0.2.80") {
		t.Fatalf("LookupNetIP: %v, %v", ips, err)
	}
	hosts, err := r.LookupHost(ctx, "host.tapnet.test.")
	if err != nil || len(hosts) != 1 || hosts[0] != "192.0.2.80" {
		t.Fatalf("LookupHost: %v, %v", hosts, err)
	}
	_, err = r.LookupNetIP(ctx, "ip4", "missing.tapnet.test.")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("missing name: %v, want a not-found DNSError", err)
	}
	// A truncated answer needs TCP, which tapnet lacks: a clear error.
	_, err = r.LookupNetIP(ctx, "ip4", "big.tapnet.test.")
	// net keeps only the text of a Dial error, not the error itself.
	if !errors.As(err, &dnsErr) || !strings.Contains(dnsErr.Err, ErrNoTCP.Error()) {
		t.Fatalf("truncated answer: %v, want ErrNoTCP's text", err)
	}
}

func TestResolverWithoutServers(t *testing.T) {
	client, _ := pair(t, tap.PipeOptions{})
	r := ResolverFunc(client, func() []netip.AddrPort { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := r.LookupNetIP(ctx, "ip4", "host.tapnet.test."); err == nil {
		t.Fatal("lookup without servers succeeded")
	}
}
