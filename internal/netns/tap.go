//go:build linux

package netns

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/tapnet/tapnet/tap"
)

// NewTUN is NewTAP for a TUN device: a point-to-point IP link, where
// kernelCIDR's prefix is routed through the device with no ARP.
func NewTUN(t testing.TB, ns *NS, kernelCIDR string, opts tap.Options) *tap.Device {
	t.Helper()
	opts.Mode = tap.ModeTUN
	return NewTAP(t, ns, kernelCIDR, opts)
}

// NewTAP creates a TAP device (or, with opts.Mode, a TUN) inside ns,
// opened by the test process, with kernelCIDR (such as "192.0.2.1/24")
// assigned to the kernel side and the interface up. The returned Device is the link for the stack under test,
// which then talks to the kernel in ns from another address of that subnet.
//
// The device is created from a thread switched into ns, so it never exists
// in the host's namespace and vanishes with the namespace. When opts.MTU is
// set, the kernel side gets the same MTU. Cleanup closes the device.
func NewTAP(t testing.TB, ns *NS, kernelCIDR string, opts tap.Options) *tap.Device {
	t.Helper()
	name := UniqueIfName("tn")
	var d *tap.Device
	err := ns.Do(func() (err error) {
		d, err = tap.Open(name, opts)
		return err
	})
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	// Closing the last descriptor of a non-persistent TAP deletes it.
	t.Cleanup(func() { d.Close() })
	if opts.MTU != 0 {
		ns.IP(t, "link", "set", "dev", name, "mtu", strconv.Itoa(opts.MTU))
	}
	ns.IP(t, "addr", "add", kernelCIDR, "dev", name)
	ns.IP(t, "link", "set", "dev", name, "up")
	return d
}

// UniqueIfName returns an interface name, unique across the processes on
// the host, that fits IFNAMSIZ: prefix, pid and a counter.
func UniqueIfName(prefix string) string {
	name := fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), counter.Add(1))
	if len(name) > 15 {
		panic("netns: interface name too long: " + name)
	}
	return name
}
