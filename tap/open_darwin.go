package tap

import (
	"fmt"
	"strings"

	"github.com/songgao/water"
)

// Open attaches to a TUN or TAP device through water. A TUN is the
// system's utun: name is "utunN", or empty to let the system pick one (see
// Name); water strips and adds the 4-byte address family header utun puts
// in front of each packet. A TAP needs the third-party tuntaposx driver and
// a name "tapN" (a TUN named "tunN" uses that driver too).
func Open(name string, opts Options) (*Device, error) {
	if err := checkQueues(opts.Queues); err != nil {
		return nil, err
	}
	cfg := water.Config{DeviceType: water.TUN}
	if opts.Mode == ModeTAP {
		cfg.DeviceType = water.TAP
	}
	cfg.Name = name
	if opts.Mode == ModeTAP || strings.HasPrefix(name, "tun") {
		cfg.Driver = water.MacOSDriverTunTapOSX
	}
	ifce, err := water.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("tap: open %s %q: %w", opts.Mode, name, err)
	}
	return newDevice(ifce.Name(), ifce, opts)
}
