package stack

import (
	"errors"
	"net"
)

// errNoSuchInterface has the text of the net package's error, so that code
// matching on it behaves the same.
var errNoSuchInterface = errors.New("no such network interface")

// Interfaces returns the stack's NICs as net.Interface values, lo (index 1)
// first, the way net.Interfaces describes the host's: index, name, MTU,
// hardware address and flags (up, running, multicast, and broadcast or
// loopback). They can be passed wherever an API takes a *net.Interface,
// such as gonet's multicast methods.
func (s *Stack) Interfaces() ([]net.Interface, error) {
	nics := *s.nics.Load()
	out := make([]net.Interface, len(nics))
	for i, n := range nics {
		out[i] = n.Interface()
	}
	return out, nil
}

// InterfaceByName returns the NIC called name, with net.InterfaceByName's
// error when there is none.
func (s *Stack) InterfaceByName(name string) (*net.Interface, error) {
	for _, n := range *s.nics.Load() {
		if n.name == name {
			ifi := n.Interface()
			return &ifi, nil
		}
	}
	return nil, &net.OpError{Op: "route", Net: "ip+net", Err: errNoSuchInterface}
}

// InterfaceByIndex returns the NIC with the given index, with
// net.InterfaceByIndex's errors.
func (s *Stack) InterfaceByIndex(index int) (*net.Interface, error) {
	if index <= 0 {
		return nil, &net.OpError{Op: "route", Net: "ip+net", Err: errors.New("invalid network interface index")}
	}
	n := s.NIC(NICID(index))
	if n == nil {
		return nil, &net.OpError{Op: "route", Net: "ip+net", Err: errNoSuchInterface}
	}
	ifi := n.Interface()
	return &ifi, nil
}

// NICForInterface maps a *net.Interface to a NIC: nil gives nil and true
// (the caller's default); otherwise the index must be one of the stack's
// NICs and, when ifi carries a name, the name must match too, so that an
// interface of the host passed by mistake is refused instead of silently
// standing for another NIC.
func (s *Stack) NICForInterface(ifi *net.Interface) (*NIC, bool) {
	if ifi == nil {
		return nil, true
	}
	n := s.NIC(NICID(ifi.Index))
	if n == nil || ifi.Name != "" && ifi.Name != n.name {
		return nil, false
	}
	return n, true
}
