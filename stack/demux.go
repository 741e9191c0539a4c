package stack

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"syscall"
)

type portKey struct {
	proto uint8
	port  uint16
}

type binding struct {
	id    TransportID
	ep    TransportEndpoint
	reuse bool
	nic   NICID // bound to a device; 0 for any
}

// demux maps received datagrams to endpoints. Bindings are grouped by local
// port; a port rarely has more than a few, so a scan picks the most
// specific match, as Linux's compute_score does.
type demux struct {
	mu     sync.RWMutex
	ports  map[portKey][]*binding
	count  int
	closed bool // set by Stack.Close under mu, so no binding slips in after
}

func (d *demux) init() { d.ports = make(map[portKey][]*binding) }

// conflicts reports whether a new binding clashes with existing ones on its
// port: overlapping local addresses, unless both sides allow reuse.
func conflicts(existing []*binding, id TransportID, reuse bool) bool {
	for _, b := range existing {
		if b.reuse && reuse {
			continue
		}
		if !b.id.LocalAddr.IsValid() || !id.LocalAddr.IsValid() || b.id.LocalAddr == id.LocalAddr {
			return true
		}
	}
	return false
}

func (d *demux) register(proto uint8, id TransportID, ep TransportEndpoint, reuse bool, nic NICID) (TransportID, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return id, ErrStackClosed
	}
	if id.LocalPort == 0 {
		span := EphemeralMax - EphemeralMin + 1
		start := rand.IntN(span)
		found := false
		for i := 0; i < span; i++ {
			p := uint16(EphemeralMin + (start+i)%span)
			if !conflicts(d.ports[portKey{proto, p}], id, reuse) {
				id.LocalPort, found = p, true
				break
			}
		}
		if !found {
			return id, syscall.EAGAIN
		}
	} else if conflicts(d.ports[portKey{proto, id.LocalPort}], id, reuse) {
		return id, syscall.EADDRINUSE
	}
	k := portKey{proto, id.LocalPort}
	d.ports[k] = append(d.ports[k], &binding{id: id, ep: ep, reuse: reuse, nic: nic})
	d.count++
	return id, nil
}

// replace moves ep's binding to a new id on the same port (connect and
// disconnect), keeping its place so no conflict check is needed.
func (d *demux) replace(proto uint8, old, id TransportID, ep TransportEndpoint) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range d.ports[portKey{proto, old.LocalPort}] {
		if b.ep == ep {
			b.id = id
			return
		}
	}
}

func (d *demux) unregister(proto uint8, id TransportID, ep TransportEndpoint) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := portKey{proto, id.LocalPort}
	list := d.ports[k]
	for i, b := range list {
		if b.ep == ep {
			list = append(list[:i:i], list[i+1:]...)
			d.count--
			break
		}
	}
	if len(list) == 0 {
		delete(d.ports, k)
	} else {
		d.ports[k] = list
	}
}

// matches reports whether b accepts a datagram, and how specifically.
func (b *binding) score(local, remote netip.AddrPort, nic NICID) int {
	s := 1
	if b.id.LocalAddr.IsValid() {
		if b.id.LocalAddr != local.Addr() {
			return -1
		}
		s += 4
	}
	if b.id.RemoteAddr.IsValid() {
		if b.id.RemoteAddr != remote.Addr() {
			return -1
		}
		s += 4
	}
	if b.id.RemotePort != 0 {
		if b.id.RemotePort != remote.Port() {
			return -1
		}
		s += 4
	}
	if b.nic != 0 {
		if b.nic != nic {
			return -1
		}
		s += 4
	}
	return s
}

// lookup returns the best endpoint for a unicast datagram.
func (d *demux) lookup(proto uint8, local, remote netip.AddrPort, nic NICID) TransportEndpoint {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var best TransportEndpoint
	bestScore := -1
	for _, b := range d.ports[portKey{proto, local.Port()}] {
		if s := b.score(local, remote, nic); s > bestScore {
			best, bestScore = b.ep, s
		}
	}
	return best
}

// lookupAll appends every endpoint accepting a broadcast or multicast
// datagram to dst.
func (d *demux) lookupAll(dst []TransportEndpoint, proto uint8, local, remote netip.AddrPort, nic NICID) []TransportEndpoint {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, b := range d.ports[portKey{proto, local.Port()}] {
		if b.score(local, remote, nic) >= 0 {
			dst = append(dst, b.ep)
		}
	}
	return dst
}

// closeAll refuses further bindings and returns every bound endpoint.
func (d *demux) closeAll() []TransportEndpoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	var out []TransportEndpoint
	for _, list := range d.ports {
		for _, b := range list {
			out = append(out, b.ep)
		}
	}
	return out
}
