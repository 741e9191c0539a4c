// Package dhcpclient configures a tapnet NIC from DHCP (RFC 2131), as a
// host's DHCP client does: it obtains a lease (DISCOVER, OFFER, REQUEST,
// ACK), optionally checks the address with ARP probes first (RFC 5227,
// DECLINE on a conflict), applies the address, the default router or the
// classless static routes (RFC 3442) and the interface MTU (option 26,
// never above the link's) to the stack, renews at T1 and rebinds at T2,
// removes everything (putting the MTU back) when the lease expires or is
// refused, and releases the lease on Close. A checked address that the
// stack later gives up to another host is declined, and a new lease asked
// for 10 s later (RFC 2131 §3.1.5). A remembered lease is asked for again
// with INIT-REBOOT. Retransmissions back off from 4 s to 64 s with a
// second of jitter (§4.1).
//
// Messages are those of github.com/insomniacslk/dhcp/dhcpv4; they travel
// over an ordinary tapnet UDP endpoint on port 68, which a NIC without an
// address can use (it broadcasts from 0.0.0.0 and accepts the server's
// unicast replies), as a Linux DHCP client can.
//
// The state machine does no I/O and takes the time from its caller, so its
// tests drive every transition on a manual clock; Config.Clock does the
// same for a running client.
//
//	c, err := dhcpclient.Start(s, nic, dhcpclient.Config{})
//	lease, err := c.Wait(ctx)
//	r := c.Resolver() // names through the lease's DNS servers
//	ips, err := c.LookupNetIP(ctx, "ip", "printer") // and its search domains
//
// Resolver is a plain *net.Resolver: for a relative name it applies the
// host's resolv.conf search list, since net.Resolver cannot be given
// another. The lease's domains (Lease.Search, or Lease.Domain) are applied
// by Client.LookupNetIP, or by gonet.LookupNetIPSearch with any resolver.
package dhcpclient
