package tap

import (
	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/link"
)

// Mode says which kind of device Open attaches to, as `ip tuntap add mode`
// does.
type Mode uint8

const (
	// ModeTAP opens a TAP device: Ethernet frames (link.LayerEthernet),
	// with ARP between the stack and the kernel. The zero Mode.
	ModeTAP Mode = iota
	// ModeTUN opens a TUN device: bare IP packets (link.LayerIP) on a
	// point-to-point link, with no Ethernet header and no ARP.
	ModeTUN
)

// Layer returns the layer of the frames a device of mode m carries.
func (m Mode) Layer() link.Layer {
	if m == ModeTUN {
		return link.LayerIP
	}
	return link.LayerEthernet
}

// String returns "tap" or "tun".
func (m Mode) String() string {
	if m == ModeTUN {
		return "tun"
	}
	return "tap"
}

// headerLen is the link header in front of each frame of a layer: an
// Ethernet header, or nothing on an IP link.
func headerLen(l link.Layer) int {
	if l == link.LayerIP {
		return 0
	}
	return ethernet.HeaderLen
}

// checkFrame reports whether a frame of n bytes fits a link of layer l with
// the given MTU: at least a link header (an IP link, at least the byte that
// holds the IP version) and at most the MTU plus the header.
func checkFrame(n, mtu int, l link.Layer) bool {
	h := headerLen(l)
	return n >= max(h, 1) && n <= mtu+h
}
