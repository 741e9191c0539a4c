package main

import (
	"flag"
	"io"
	"net/netip"
	"slices"
	"testing"
)

func parseTestFlags(args ...string) (*config, error) {
	fs := flag.NewFlagSet("dns", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return parseFlags(fs, args)
}

// README promises that the examples take -dhcp as the alternative to
// -addr; dns shares netsetup's link flags for it.
func TestFlagsDHCP(t *testing.T) {
	c, err := parseTestFlags("-tap", "tap7", "-dhcp", "-record", "www.example.test=192.0.2.80")
	if err != nil {
		t.Fatal(err)
	}
	if !c.link.DHCP || c.link.Tap != "tap7" || len(c.prefixes) != 0 {
		t.Errorf("-dhcp parsed as DHCP %v, tap %q, prefixes %v", c.link.DHCP, c.link.Tap, c.prefixes)
	}
	if _, err := parseTestFlags("-net", "kernel", "-dhcp", "-record", "www.example.test=192.0.2.80"); err == nil {
		t.Error("-net kernel -dhcp accepted; the kernel socket has no lease to use")
	}
}

// Without -dhcp the shared -addr keeps its default and repeats as before.
func TestFlagsAddr(t *testing.T) {
	c, err := parseTestFlags("-record", "www.example.test=192.0.2.80")
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}; !slices.Equal(c.prefixes, want) || c.addrGiven || c.port != 53 {
		t.Errorf("defaults: prefixes %v (given %v), port %d; want %v, not given, 53", c.prefixes, c.addrGiven, c.port, want)
	}
	c, err = parseTestFlags("-addr", "192.0.2.9/24", "-addr", "2001:db8::9/64", "-port", "5353", "-gw", "192.0.2.1", "-record", "a.example.test=192.0.2.80")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.9/24"), netip.MustParsePrefix("2001:db8::9/64")}
	if !slices.Equal(c.prefixes, want) || !c.addrGiven || c.port != 5353 || c.link.GW != "192.0.2.1" {
		t.Errorf("prefixes %v (given %v), port %d, gw %q", c.prefixes, c.addrGiven, c.port, c.link.GW)
	}
	for _, args := range [][]string{
		{}, // no records
		{"-record", "x.test=192.0.2.1", "-port", "65536"},
		{"-record", "x.test=192.0.2.1", "-net", "udp"},
		{"-record", "x.test=192.0.2.1", "extra"},
	} {
		if _, err := parseTestFlags(args...); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
