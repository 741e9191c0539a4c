package gonet

import (
	"net"
	"strings"
	"testing"

	"github.com/tapnet/tapnet/tap"
)

// TestInterfaceAddrs: the NICs' IPv4 and IPv6 addresses in net's shape
// (16-byte IPs; 4-byte masks for IPv4) and order (IPv4 first, global IPv6
// before link-local), per interface and for all.
func TestInterfaceAddrs(t *testing.T) {
	a, _, na, _ := pair6(t, tap.PipeOptions{})
	ll := linkLocal(t, na)
	ifi, err := a.InterfaceByName(na.Name())
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := InterfaceAddrs(a, ifi)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range addrs {
		n := x.(*net.IPNet)
		if len(n.IP) != net.IPv6len {
			t.Errorf("%v: %d-byte IP, want 16 as net gives", n, len(n.IP))
		}
		if want := map[bool]int{true: 4, false: 16}[n.IP.To4() != nil]; len(n.Mask) != want {
			t.Errorf("%v: %d-byte mask, want %d", n, len(n.Mask), want)
		}
		got = append(got, n.String())
	}
	if want := "192.0.2.2/24 2001:db8::2/64 " + ll.String() + "/64"; strings.Join(got, " ") != want {
		t.Errorf("tap0: %s, want %s", strings.Join(got, " "), want)
	}
	all, err := InterfaceAddrs(a, nil)
	if err != nil || len(all) != 5 || all[0].String() != "127.0.0.1/8" || all[1].String() != "::1/128" {
		t.Errorf("all: %v, %v; want lo's 127.0.0.1/8 and ::1/128, then tap0's", all, err)
	}
	_, err = InterfaceAddrs(a, &net.Interface{Index: 9, Name: "eth9"})
	if err == nil || err.Error() != "route ip+net: no such network interface" {
		t.Errorf("unknown interface: %v", err)
	}
}
