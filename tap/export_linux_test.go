package tap

import (
	"testing"

	"golang.org/x/sys/unix"
)

// Refusal names what a test makes the kernel refuse when a TAP opens.
type Refusal int

const (
	// RefuseUSO: TUNSETOFFLOAD refuses UDP segmentation offload, as
	// kernels before 6.2 do.
	RefuseUSO Refusal = iota + 1
	// RefuseChecksum: TUNSETOFFLOAD refuses every offload.
	RefuseChecksum
	// RefuseVnetHdr: TUNSETIFF refuses IFF_VNET_HDR.
	RefuseVnetHdr
)

// RefuseForTest makes the kernel refuse r (with EINVAL, without asking it)
// for devices opened until t ends. Tests using it must not run in
// parallel with others that open devices.
func RefuseForTest(t testing.TB, r Refusal) {
	setIff, setOffload := ioctlSetIff, ioctlSetOffload
	t.Cleanup(func() { ioctlSetIff, ioctlSetOffload = setIff, setOffload })
	switch r {
	case RefuseUSO, RefuseChecksum:
		refused := tunFUSO4 | tunFUSO6
		if r == RefuseChecksum {
			refused |= tunFCsum
		}
		ioctlSetOffload = func(fd, flags int) error {
			if flags&refused != 0 {
				return unix.EINVAL
			}
			return setOffload(fd, flags)
		}
	case RefuseVnetHdr:
		ioctlSetIff = func(fd int, ifr *unix.Ifreq) error {
			if ifr.Uint16()&unix.IFF_VNET_HDR != 0 {
				return unix.EINVAL
			}
			return setIff(fd, ifr)
		}
	}
}
