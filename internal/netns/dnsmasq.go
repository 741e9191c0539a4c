//go:build linux

package netns

import (
	"os/exec"
	"testing"
)

// RequireDnsmasq fails the test unless dnsmasq is installed; tests that
// need it are root tests, which CI runs with it installed.
func RequireDnsmasq(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Fatal("dnsmasq (Debian's dnsmasq-base) is needed: ", err)
	}
}

// DnsmasqDHCP is the command line of a dnsmasq that serves DHCP on ifname
// only, leasing 192.0.2.50–60 for 2 minutes and keeping its leases in
// leaseFile, in the foreground as root with no configuration of the host's;
// extra options follow.
func DnsmasqDHCP(ifname, leaseFile string, extra ...string) []string {
	args := []string{"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--user=root", "--pid-file=", "--interface=" + ifname, "--bind-interfaces", "--except-interface=lo",
		"--dhcp-leasefile=" + leaseFile, "--dhcp-range=192.0.2.50,192.0.2.60,255.255.255.0,2m"}
	return append(args, extra...)
}
