//go:build !linux && !darwin && !windows && !freebsd

package tap

import (
	"fmt"
	"runtime"
)

// Open fails: tapnet opens no TAP or TUN device on this system (the
// in-memory Pipe and Hub work everywhere).
func Open(name string, opts Options) (*Device, error) {
	return nil, fmt.Errorf("tap: %s devices are not supported on %s", opts.Mode, runtime.GOOS)
}
