// Package netsetup holds what every example shares: the -tap, -tun, -addr,
// -dhcp, -gw, -mac and -pcap flags and the code that turns them into a
// running tapnet stack on a TAP or TUN device, or on an in-memory pipe for
// runs without root.
package netsetup

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/tapnet/tapnet/dhcpclient"
	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// Flags are the link settings of an example.
type Flags struct {
	Tap  string
	Tun  string // when set, used instead of Tap
	Addr string
	DHCP bool // ask DHCP instead of using Addr and GW
	GW   string
	MAC  string
	Pcap string
	// Offload and Queues are tap.Options' (Linux only).
	Offload bool
	Queues  int
}

// dhcpTimeout bounds the wait for a first lease.
const dhcpTimeout = time.Minute

// Register adds the shared flags to fs with the given default address.
func Register(fs *flag.FlagSet, defaultAddr string) *Flags {
	f := &Flags{}
	DefineDevice(fs, &f.Tap, &f.Tun)
	fs.StringVar(&f.Addr, "addr", defaultAddr, "tapnet's IPv4 address with prefix length")
	fs.BoolVar(&f.DHCP, "dhcp", false, "get the address, gateway and DNS servers from DHCP instead of -addr and -gw")
	fs.StringVar(&f.GW, "gw", "", "default gateway (optional)")
	DefineMAC(fs, &f.MAC)
	fs.StringVar(&f.Pcap, "pcap", "", "write every frame of the link to this pcap file")
	fs.BoolVar(&f.Offload, "offload", false, "use the TAP's checksum and UDP segmentation offloads (virtio-net headers)")
	fs.IntVar(&f.Queues, "queues", 1, "open the TAP with this many queues (IFF_MULTI_QUEUE), one reader each")
	return f
}

// DefineDevice defines the -tap and -tun flags, for the examples that
// define their other flags themselves: one help text in every example.
func DefineDevice(fs *flag.FlagSet, tapName, tunName *string) {
	fs.StringVar(tapName, "tap", "tap0", "TAP device to attach to (created if missing; needs root)")
	fs.StringVar(tunName, "tun", "", "TUN device to attach to instead of a TAP: a point-to-point IP link with no ARP (created if missing; needs root)")
}

// DefineMAC defines the -mac flag, for the examples that define their other
// flags themselves: one help text in every example.
func DefineMAC(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "mac", "", "tapnet's MAC address on the TAP (default: random, locally administered)")
}

// Net is a running stack with its link resources.
type Net struct {
	Stack   *stack.Stack
	NIC     *stack.NIC
	Addr    netip.Prefix
	DHCP    *dhcpclient.Client // with -dhcp
	closers []io.Closer
}

// Resolver returns a resolver over the stack: through the DHCP lease's DNS
// servers with -dhcp, else through servers.
func (n *Net) Resolver(servers ...netip.AddrPort) *net.Resolver {
	if n.DHCP != nil {
		return n.DHCP.Resolver()
	}
	return gonet.Resolver(n.Stack, servers...)
}

// Close releases the DHCP lease, shuts the stack and flushes the capture
// file.
func (n *Net) Close() error {
	if n.DHCP != nil {
		n.DHCP.Close()
	}
	err := n.Stack.Close()
	for i := len(n.closers) - 1; i >= 0; i-- {
		err = errors.Join(err, n.closers[i].Close())
	}
	return err
}

// Device names the device the flags choose, such as "TAP tap0" or
// "TUN tun0".
func (f *Flags) Device() string {
	if f.Tun != "" {
		return "TUN " + f.Tun
	}
	return "TAP " + f.Tap
}

// Open attaches a stack to the TUN device named by the flags, or else to
// their TAP device.
func (f *Flags) Open() (*Net, error) {
	opts := tap.Options{Mode: tap.ModeTAP, Offload: f.Offload, Queues: f.Queues}
	name := f.Tap
	if f.Tun != "" {
		opts.Mode, name = tap.ModeTUN, f.Tun
	}
	if f.MAC != "" {
		hw, err := net.ParseMAC(f.MAC)
		if err != nil {
			return nil, fmt.Errorf("-mac: %w", err)
		}
		m, ok := ethernet.MACFrom(hw)
		if !ok {
			return nil, fmt.Errorf("-mac: %q is not a 6-byte Ethernet address", f.MAC)
		}
		opts.MAC = m
	}
	dev, err := tap.Open(name, opts)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", f.Device(), err)
	}
	return f.attach(dev)
}

// Attach builds a stack on an existing link (one end of a tap.Pipe) with the
// flags' address, gateway and capture file.
func (f *Flags) Attach(l link.Device) (*Net, error) { return f.attach(l) }

func (f *Flags) attach(l link.Device) (*Net, error) {
	var p netip.Prefix
	if !f.DHCP {
		var err error
		if p, err = netip.ParsePrefix(f.Addr); err != nil {
			l.Close()
			return nil, fmt.Errorf("-addr: %w", err)
		}
	}
	n := &Net{Addr: p}
	if f.Pcap != "" {
		file, err := os.Create(f.Pcap)
		if err != nil {
			l.Close()
			return nil, err
		}
		n.closers = append(n.closers, file)
		c, err := tap.Capture(l, file)
		if err != nil {
			l.Close()
			file.Close()
			return nil, err
		}
		l = c
	}
	n.Stack = stack.New(stack.Options{})
	var addrs []netip.Prefix
	if p.IsValid() {
		addrs = []netip.Prefix{p}
	}
	var err error
	n.NIC, err = n.Stack.AddNIC(l, stack.NICOptions{Addresses: addrs})
	if err != nil {
		n.Close()
		return nil, err
	}
	if f.DHCP {
		if err := n.startDHCP(); err != nil {
			n.Close()
			return nil, err
		}
		return n, nil
	}
	if f.GW != "" {
		gw, err := netip.ParseAddr(f.GW)
		if err == nil {
			err = n.Stack.SetDefaultGateway(n.NIC.ID(), gw)
		}
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("-gw: %w", err)
		}
	}
	return n, nil
}

// startDHCP runs a DHCP client on the NIC and waits for its first lease.
func (n *Net) startDHCP() error {
	c, err := dhcpclient.Start(n.Stack, n.NIC, dhcpclient.Config{CheckAddress: true, OnEvent: func(e dhcpclient.Event) {
		fmt.Fprintf(os.Stderr, "dhcp: %v %v from %v\n", e.Kind, e.Lease.Addr, e.Lease.Server)
	}})
	if err != nil {
		return fmt.Errorf("-dhcp: %w", err)
	}
	n.DHCP = c
	ctx, cancel := context.WithTimeout(context.Background(), dhcpTimeout)
	defer cancel()
	l, err := c.Wait(ctx)
	if err != nil {
		return fmt.Errorf("-dhcp: no lease: %w", err)
	}
	n.Addr = l.Addr
	return nil
}

// FromValues builds Flags from already parsed settings (the examples that
// parse their own flags). Zero values mean "not set".
func FromValues(tapName, tunName string, addr netip.Prefix, gw netip.Addr, mac net.HardwareAddr, pcap string) *Flags {
	f := &Flags{Tap: tapName, Tun: tunName, Addr: addr.String(), Pcap: pcap}
	if gw.IsValid() {
		f.GW = gw.String()
	}
	if mac != nil {
		f.MAC = mac.String()
	}
	return f
}

// PipePair builds two stacks joined by an in-memory pipe, for runs without
// root: the server has the flags' address (and capture file), the client
// the next free address of the same prefix.
func (f *Flags) PipePair() (server, client *Net, err error) {
	p, err := netip.ParsePrefix(f.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("-addr: %w", err)
	}
	peer := p.Addr().Next()
	if !p.Contains(peer.Next()) { // peer would be the broadcast address
		peer = p.Addr().Prev()
	}
	if !p.Contains(peer) || peer == p.Masked().Addr() {
		return nil, nil, fmt.Errorf("-addr: %v has no room for a second host", p)
	}
	ls, lc := tap.Pipe(tap.PipeOptions{})
	if server, err = f.attach(ls); err != nil {
		lc.Close()
		return nil, nil, err
	}
	cf := &Flags{Addr: netip.PrefixFrom(peer, p.Bits()).String()}
	if client, err = cf.attach(lc); err != nil {
		server.Close()
		return nil, nil, err
	}
	return server, client, nil
}

// PipeConns is PipePair with a UDP socket on each stack: the server's bound
// to port on the flags' address, the client's to an ephemeral port on its
// own stack's address (not the wildcard), so that both LocalAddrs name the
// address the peer sees. cleanup closes the sockets and both stacks.
func (f *Flags) PipeConns(port uint16) (server, client *gonet.UDPConn, cleanup func(), err error) {
	sn, cn, err := f.PipePair()
	if err != nil {
		return nil, nil, nil, err
	}
	server, err = gonet.ListenUDP(sn.Stack, "udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(sn.Addr.Addr(), port)))
	if err == nil {
		client, err = gonet.ListenUDP(cn.Stack, "udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(cn.Addr.Addr(), 0)))
		if err == nil {
			return server, client, func() { server.Close(); client.Close(); sn.Close(); cn.Close() }, nil
		}
		server.Close()
	}
	sn.Close()
	cn.Close()
	return nil, nil, nil, err
}
