package ipv6

import (
	"crypto/sha256"
	"net/netip"
	"testing"
)

func TestSolicitedNode(t *testing.T) {
	for _, c := range []struct{ addr, want string }{
		{"2001:db8::1:2345:6789", "ff02::1:ff45:6789"},
		{"fe80::5eff:fe10:1", "ff02::1:ff10:1"},
		{"::", "ff02::1:ff00:0"},
	} {
		got := SolicitedNode(netip.MustParseAddr(c.addr))
		if got != netip.MustParseAddr(c.want) || !IsSolicitedNode(got) {
			t.Errorf("SolicitedNode(%s) = %v, want %s", c.addr, got, c.want)
		}
	}
	for _, a := range []string{"ff02::1", "ff02::2:ff00:1", "ff05::1:ff00:1", "2001:db8::1:ff00:1", "192.0.2.1"} {
		if IsSolicitedNode(netip.MustParseAddr(a)) {
			t.Errorf("%s taken for a solicited-node group", a)
		}
	}
	if mac := MulticastMAC(SolicitedNode(tHost1)); mac != [6]byte{0x33, 0x33, 0xff, 0, 0, 1} {
		t.Errorf("multicast MAC %x", mac)
	}
}

func TestEUI64(t *testing.T) {
	for _, c := range []struct {
		mac  [6]byte
		want string
	}{
		{tMAC, "fe80::5eff:fe10:1"},
		{[6]byte{0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde}, "fe80::3656:78ff:fe9a:bcde"},
		{[6]byte{0x00, 0x00, 0x5e, 0x00, 0x53, 0x01}, "fe80::200:5eff:fe00:5301"},
	} {
		if got := AddrFromPrefix(LinkLocalPrefix, EUI64(c.mac)); got != netip.MustParseAddr(c.want) {
			t.Errorf("EUI-64 of %x: %v, want %s", c.mac, got, c.want)
		}
	}
	if got := AddrFromPrefix(netip.MustParsePrefix("2001:db8:1:2::/64"), EUI64(tMAC)); got != netip.MustParseAddr("2001:db8:1:2:0:5eff:fe10:1") {
		t.Errorf("global EUI-64: %v", got)
	}
}

func TestStableInterfaceID(t *testing.T) {
	secret := []byte("0123456789abcdef")
	prefix := netip.MustParsePrefix("2001:db8:1:2::/64")
	id, counter := StableInterfaceID(prefix, "tap0", 0, secret)
	if counter != 0 {
		t.Fatalf("counter %d", counter)
	}
	// The documented input: 64 prefix bits, 2-byte name length, name, DAD
	// counter, secret.
	in := append([]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 4}, "tap0"...)
	in = append(append(in, 0), secret...)
	if sum := sha256.Sum256(in); id != InterfaceID(sum[:8]) {
		t.Fatalf("id %x, want %x", id, sum[:8])
	}
	if again, _ := StableInterfaceID(netip.MustParsePrefix("2001:db8:1:2:ffff::/64"), "tap0", 0, secret); again != id {
		t.Error("host bits of the prefix change the identifier")
	}
	for name, other := range map[string]InterfaceID{
		"prefix":                           first(StableInterfaceID(netip.MustParsePrefix("2001:db8:1:3::/64"), "tap0", 0, secret)),
		"name":                             first(StableInterfaceID(prefix, "tap1", 0, secret)),
		"counter":                          first(StableInterfaceID(prefix, "tap0", 1, secret)),
		"secret":                           first(StableInterfaceID(prefix, "tap0", 0, []byte("0123456789abcdeF"))),
		"boundary between name and secret": first(StableInterfaceID(prefix, "tap", 0, append([]byte("0"), secret...))),
	} {
		if other == id {
			t.Errorf("another %s gives the same identifier", name)
		}
	}
}

func first(id InterfaceID, _ uint8) InterfaceID { return id }

func TestIsReservedInterfaceID(t *testing.T) {
	for id, want := range map[InterfaceID]bool{
		{}:                                      true,
		{2, 0, 0x5e, 0xff, 0xfe, 0, 0, 0}:       true,
		{2, 0, 0x5e, 0xff, 0xfe, 0, 0x52, 0x12}: true,
		{2, 0, 0x5e, 0xff, 0xfe, 0, 0x52, 0x13}: false,
		{0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80}: true,
		{0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}: false,
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}: true,
		EUI64(tMAC):              false,
		{0, 0, 0, 0, 0, 0, 0, 1}: false,
	} {
		if IsReservedInterfaceID(id) != want {
			t.Errorf("%x: reserved %v", id, !want)
		}
	}
}

func TestScopes(t *testing.T) {
	for _, c := range []struct {
		addr  string
		scope Scope
		mcast bool
	}{
		{"ff01::1", ScopeInterfaceLocal, true},
		{"ff02::1", ScopeLinkLocal, true},
		{"ff3e::8000:1", ScopeGlobal, true},
		{"ff05::2", ScopeSiteLocal, true},
		{"ff18::1", ScopeOrganizationLocal, true},
		{"fe80::1", ScopeLinkLocal, false},
		{"::1", ScopeLinkLocal, false},
		{"fec0::1", ScopeSiteLocal, false},
		{"2001:db8::1", ScopeGlobal, false},
		{"::ffff:239.1.2.3", ScopeGlobal, false},
	} {
		a := netip.MustParseAddr(c.addr)
		if s, ok := MulticastScope(a); ok != c.mcast || ok && s != c.scope {
			t.Errorf("MulticastScope(%s) = %d, %v", c.addr, s, ok)
		}
		if s := AddrScope(a); s != c.scope {
			t.Errorf("AddrScope(%s) = %d, want %d", c.addr, s, c.scope)
		}
	}
	if f := MulticastFlags(netip.MustParseAddr("ff3e::1")); f != MulticastFlagTransient|MulticastFlagPrefix {
		t.Errorf("flags %x", f)
	}
	for a, want := range map[string]bool{"ff3e::8000:1": true, "ff35::1": true, "ff3e:40:2001:db8::1": false, "ff0e::1": false, "239.1.1.1": false} {
		if IsSourceSpecific(netip.MustParseAddr(a)) != want {
			t.Errorf("IsSourceSpecific(%s) = %v", a, !want)
		}
	}
}
