package netsetup

import (
	"flag"
	"net/netip"
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
