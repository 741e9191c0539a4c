// Package netsetup holds what every example shares: the -tap, -tun, -addr,
// -dhcp, -gw, -mac and -pcap flags and the code that turns them into a
// running tapnet stack on a TAP or TUN device, or on an in-memory pipe for
// runs without root.
//
// -addr may be given more than once, typically an IPv4 and an IPv6 prefix
// (-addr 192.0.2.2/24 -addr 2001:db8::2/64): the NIC gets them all, and
// IPv6 ones are usable once duplicate address detection has passed.
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
	"strings"
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
	Addr string // one prefix, or several separated by commas (ParsePrefixes)
	DHCP bool   // ask DHCP instead of using Addr and GW
	GW   string
	MAC  string
	Pcap string
	// Offload and Queues are tap.Options' (Linux only).
	Offload bool
	Queues  int
}

// dhcpTimeout bounds the wait for a first lease.
const dhcpTimeout = time.Minute

// dadTimeout bounds the wait for duplicate address detection on the IPv6
// addresses of -addr (about a second on an Ethernet link).
const dadTimeout = 10 * time.Second

// addrUsage is the help text of -addr in every example.
const addrUsage = "tapnet's address with prefix length; repeat it (or separate with commas) for more, such as an IPv4 and an IPv6 prefix"

// Register adds the shared flags to fs with the given default address.
func Register(fs *flag.FlagSet, defaultAddr string) *Flags {
	f := &Flags{}
	DefineDevice(fs, &f.Tap, &f.Tun)
	DefineAddr(fs, &f.Addr, defaultAddr, addrUsage)
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

// DefineAddr defines the repeatable -addr flag, for the examples that
// define their other flags themselves: p starts as def, the first -addr
// replaces it and later ones are appended with commas. usage "" gives the
// shared help text.
func DefineAddr(fs *flag.FlagSet, p *string, def, usage string) {
	if usage == "" {
		usage = addrUsage
	}
	*p = def
	fs.Var(&addrFlag{p: p}, "addr", usage)
}

// addrFlag is a repeatable -addr.
type addrFlag struct {
	p   *string
	set bool // the default has been replaced
}

func (a *addrFlag) String() string {
	if a == nil || a.p == nil {
		return ""
	}
	return *a.p
}

func (a *addrFlag) Set(s string) error {
	if _, err := ParsePrefixes(s); err != nil {
		return err
	}
	if !a.set {
		*a.p, a.set = s, true
		return nil
	}
	*a.p += "," + s
	return nil
}

// ParsePrefixes parses one prefix or several separated by commas, such as
// "192.0.2.2/24,2001:db8::2/64".
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
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
	Addr    netip.Prefix       // the first of Addrs (or the DHCP lease's)
	Addrs   []netip.Prefix     // every address of -addr, in order
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
	var addrs []netip.Prefix
	if !f.DHCP {
		var err error
		if addrs, err = ParsePrefixes(f.Addr); err != nil {
			l.Close()
			return nil, fmt.Errorf("-addr: %w", err)
		}
	}
	n := &Net{Addrs: addrs}
	if len(addrs) > 0 {
		n.Addr = addrs[0]
	}
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
	var err error
	n.NIC, err = n.Stack.AddNIC(l, stack.NICOptions{Addresses: addrs})
	if err != nil {
		n.Close()
		return nil, err
	}
	if err := n.waitAddresses(); err != nil {
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

// waitAddresses waits until duplicate address detection has passed on
// every IPv6 address, so that the example announces itself only once it
// can use them.
func (n *Net) waitAddresses() error {
	ctx, cancel := context.WithTimeout(context.Background(), dadTimeout)
	defer cancel()
	for _, p := range n.Addrs {
		if err := n.NIC.WaitAddress(ctx, p.Addr()); err != nil {
			return fmt.Errorf("-addr %v: %w", p, err)
		}
	}
	return nil
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
	n.Addrs = []netip.Prefix{l.Addr}
	return nil
}

// FromValues builds Flags from already parsed settings (the examples that
// parse their own flags). Zero values mean "not set".
func FromValues(tapName, tunName string, addrs []netip.Prefix, gw netip.Addr, mac net.HardwareAddr, pcap string) *Flags {
	s := make([]string, len(addrs))
	for i, p := range addrs {
		s[i] = p.String()
	}
	f := &Flags{Tap: tapName, Tun: tunName, Addr: strings.Join(s, ","), Pcap: pcap}
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
	ps, err := ParsePrefixes(f.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("-addr: %w", err)
	}
	p := ps[0]
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
