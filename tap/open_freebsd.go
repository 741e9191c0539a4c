package tap

import (
	"fmt"
	"os"
	"strings"
)

// Open attaches to /dev/NAME, a FreeBSD tap ("tapN") or tun ("tunN")
// device, which opening creates if absent. water leaves FreeBSD out, and
// the device node is all it takes: a tun in its default mode reads and
// writes bare IP packets. Bring the interface up with ifconfig (or set
// net.link.tap.up_on_open).
//
// A tun in that mode carries IPv4 only: the kernel assumes AF_INET for
// what is written and refuses to queue other families for reading. IPv6
// over a FreeBSD tun would need TUNSIFHEAD and its 4-byte address-family
// header, which this opener does not set up yet; a tap carries both.
func Open(name string, opts Options) (*Device, error) {
	if err := checkQueues(opts.Queues); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(name, opts.Mode.String()) || strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("tap: a FreeBSD %s device is named %sN, not %q", opts.Mode, opts.Mode, name)
	}
	// os.OpenFile puts a character device in the poller, so Close
	// interrupts a blocked read.
	f, err := os.OpenFile("/dev/"+name, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("tap: %w", err)
	}
	return newDevice(name, f, opts)
}
