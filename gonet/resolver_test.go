package gonet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// serveDNS answers A queries on s's port 53: host.tapnet.test. is
// 192.0.2.80, big.tapnet.test. comes back truncated, names under
// refused.test. are refused, anything else is NXDOMAIN.
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
			case strings.HasSuffix(q.Name.String(), ".refused.test."):
				m.Header.RCode = dnsmessage.RCodeRefused
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

// LookupNetIPSearch applies a search list (a DHCP lease's) to relative
// names as a stub resolver with ndots 1 would, which net.Resolver cannot
// be told to do.
func TestLookupNetIPSearch(t *testing.T) {
	client, server := pair(t, tap.PipeOptions{})
	serveDNS(t, server)
	r := Resolver(client, netip.MustParseAddrPort("192.0.2.1:53"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	want := netip.MustParseAddr("192.0.2.80")
	for _, tc := range []struct {
		host   string
		search []string
	}{
		{"host", []string{"nope.test", "tapnet.test"}},    // the second domain
		{"host", []string{".tapnet.test."}},               // dots around a domain ignored
		{"host.tapnet", []string{"test"}},                 // as is first, then searched
		{"host", []string{"refused.test", "tapnet.test"}}, // past a refusal
		{"host.tapnet.test", nil},                         // as is
		{"host.tapnet.test.", []string{"x.test"}},         // rooted
	} {
		ips, err := LookupNetIPSearch(ctx, r, "ip4", tc.host, tc.search)
		if err != nil || len(ips) != 1 || ips[0] != want {
			t.Errorf("%q with search %q: %v, %v; want %v", tc.host, tc.search, ips, err, want)
		}
	}
	var dnsErr *net.DNSError
	for _, tc := range []struct {
		host   string
		search []string
	}{
		{"host", nil},                        // the root has no host.
		{"host.", []string{"tapnet.test"}},   // rooted: no search
		{"missing", []string{"tapnet.test"}}, // nowhere
	} {
		_, err := LookupNetIPSearch(ctx, r, "ip4", tc.host, tc.search)
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound || dnsErr.Name != tc.host {
			t.Errorf("%q with search %q: %v, want not found naming %q", tc.host, tc.search, err, tc.host)
		}
	}
	// When every name fails, the error is the original name's: here a
	// truncated answer (no TCP), not the searched name's NXDOMAIN.
	_, err := LookupNetIPSearch(ctx, r, "ip4", "big.tapnet.test", []string{"later.test"})
	if !errors.As(err, &dnsErr) || !strings.Contains(dnsErr.Err, ErrNoTCP.Error()) || dnsErr.Name != "big.tapnet.test" {
		t.Errorf("truncated answer, then not found: %v, want ErrNoTCP's text for big.tapnet.test", err)
	}
	// A refusal is not reported as "not found".
	_, err = LookupNetIPSearch(ctx, r, "ip4", "x.refused.test.", nil)
	if !errors.As(err, &dnsErr) || dnsErr.IsNotFound {
		t.Errorf("refused: %v, want a server error", err)
	}
	// IP literals are not names (net returns them IPv4-mapped).
	ips, err := LookupNetIPSearch(ctx, r, "ip", "192.0.2.9", []string{"tapnet.test"})
	if err != nil || len(ips) != 1 || ips[0].Unmap() != netip.MustParseAddr("192.0.2.9") {
		t.Errorf("literal: %v, %v", ips, err)
	}
}

func TestSearchNamesOrderAndBound(t *testing.T) {
	long := make([]string, 100)
	for i := range long {
		long[i] = "d" + strconv.Itoa(i) + ".test"
	}
	for _, tc := range []struct {
		host   string
		search []string
		want   []string
	}{
		{"a", []string{"x.test", "", "y.test."}, []string{"a.x.test.", "a.y.test.", "a."}},
		{"a.b", []string{"x.test"}, []string{"a.b.", "a.b.x.test."}},
		{"a.b.", []string{"x.test"}, []string{"a.b."}},
		{"2001:db8::1", []string{"x.test"}, []string{"2001:db8::1"}},
		{"a", long, []string{"a.d0.test.", "a.d1.test.", "a.d2.test.", "a.d3.test.", "a.d4.test.", "a.d5.test.", "a."}},
	} {
		if got := searchNames(tc.host, tc.search); !slices.Equal(got, tc.want) {
			t.Errorf("searchNames(%q, %q) = %q, want %q", tc.host, tc.search, got, tc.want)
		}
	}
}
