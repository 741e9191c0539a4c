package netsetup

import (
	"flag"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// The quickstart prints the client's LocalAddr: it must be the address the
// server sees as the source, not the wildcard.
func TestPipeConnsClientLocalAddrIsItsSource(t *testing.T) {
	server, client, cleanup, err := (&Flags{Addr: "192.0.2.2/24"}).PipeConns(4433)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()

	local := client.LocalAddr().String()
	if local == "" || netip.MustParseAddrPort(local).Addr() != netip.MustParseAddr("192.0.2.3") {
		t.Fatalf("client LocalAddr = %s, want 192.0.2.3:port", local)
	}
	if _, err := client.WriteTo([]byte("hi"), server.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if err := server.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, from, err := server.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "hi" || from.String() != local {
		t.Errorf("server read %q from %s, want %q from %s", buf[:n], from, "hi", local)
	}
}

// Every example's -mac comes from DefineMAC; Register must use it too.
func TestRegisterUsesSharedMACFlag(t *testing.T) {
	shared := flag.NewFlagSet("shared", flag.ContinueOnError)
	var mac string
	DefineMAC(shared, &mac)
	reg := flag.NewFlagSet("reg", flag.ContinueOnError)
	Register(reg, "192.0.2.2/24")
	if got, want := reg.Lookup("mac").Usage, shared.Lookup("mac").Usage; got != want {
		t.Errorf("Register's -mac help %q, DefineMAC's %q", got, want)
	}
}

// -tun NAME is the alternative to -tap NAME in every example.
func TestRegisterTUN(t *testing.T) {
	fs := flag.NewFlagSet("reg", flag.ContinueOnError)
	f := Register(fs, "192.0.2.2/24")
	if f.Device() != "TAP tap0" {
		t.Errorf("default device %q, want TAP tap0", f.Device())
	}
	if err := fs.Parse([]string{"-tun", "tun3"}); err != nil {
		t.Fatal(err)
	}
	if f.Device() != "TUN tun3" {
		t.Errorf("with -tun tun3, device %q", f.Device())
	}
}

// -addr is repeatable: the first use replaces the default, later ones add
// prefixes, and the NIC gets them all (IPv6 ones after DAD).
func TestRegisterRepeatedAddr(t *testing.T) {
	fs := flag.NewFlagSet("reg", flag.ContinueOnError)
	f := Register(fs, "192.0.2.2/24")
	if err := fs.Parse([]string{"-addr", "198.51.100.2/24", "-addr", "2001:db8::2/64"}); err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("198.51.100.2/24"), netip.MustParsePrefix("2001:db8::2/64")}
	got, err := ParsePrefixes(f.Addr)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("-addr twice gives %v (%v), want %v", got, err, want)
	}
	if err := fs.Parse([]string{"-addr", "2001:db8::/129"}); err == nil {
		t.Error("an invalid -addr was accepted")
	}
	server, client, err := f.PipePair()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	defer client.Close()
	if server.Addr != want[0] || !slices.Equal(server.Addrs, want) {
		t.Errorf("Net.Addr %v, Addrs %v; want %v first of %v", server.Addr, server.Addrs, want[0], want)
	}
	for _, p := range want {
		if !server.Stack.IsLocalAddress(p.Addr()) {
			t.Errorf("%v not usable once attach returned", p)
		}
	}
}

func TestRegisterDefaultAddr(t *testing.T) {
	fs := flag.NewFlagSet("reg", flag.ContinueOnError)
	f := Register(fs, "192.0.2.2/24")
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if f.Addr != "192.0.2.2/24" {
		t.Errorf("default -addr %q", f.Addr)
	}
}
