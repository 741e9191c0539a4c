package tap

import (
	"errors"
	"fmt"

	"github.com/songgao/water"
)

// Open attaches to a tap-windows6 adapter (OpenVPN's, component tap0901)
// through water: name is the adapter's name as Windows shows it, or empty
// for the first one. In TUN mode the driver emulates a point-to-point link
// and needs opts.Network, the Windows side's address and prefix.
func Open(name string, opts Options) (*Device, error) {
	if err := checkQueues(opts.Queues); err != nil {
		return nil, err
	}
	cfg := water.Config{DeviceType: water.TAP}
	cfg.ComponentID = "tap0901"
	cfg.InterfaceName = name
	if opts.Mode == ModeTUN {
		if !opts.Network.IsValid() {
			return nil, errors.New("tap: a TUN on Windows needs Options.Network, the Windows side's address and prefix")
		}
		cfg.DeviceType, cfg.Network = water.TUN, opts.Network.String()
	}
	ifce, err := water.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("tap: open %s %q: %w", opts.Mode, name, err)
	}
	return newDevice(ifce.Name(), ifce, opts)
}
