package arp

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/tapnet/tapnet/ethernet"
)

// Packet layout for Ethernet/IPv4.
const (
	PacketLen    = 28
	OpRequest    = 1
	OpReply      = 2
	htypeEther   = 1
	ptypeIPv4    = 0x0800
	hlenEthernet = 6
	plenIPv4     = 4
)

// Errors returned by Parse.
var (
	ErrTooShort = errors.New("arp: packet too short")
	ErrFormat   = errors.New("arp: not Ethernet/IPv4 or bad address lengths")
	ErrOp       = errors.New("arp: unknown operation")
)

// Packet is a view of an ARP packet.
type Packet []byte

// Parse validates an Ethernet/IPv4 ARP packet.
func Parse(b []byte) (Packet, error) {
	if len(b) < PacketLen {
		return nil, ErrTooShort
	}
	p := Packet(b[:PacketLen])
	if binary.BigEndian.Uint16(p[0:2]) != htypeEther || binary.BigEndian.Uint16(p[2:4]) != ptypeIPv4 ||
		p[4] != hlenEthernet || p[5] != plenIPv4 {
		return nil, ErrFormat
	}
	if op := p.Op(); op != OpRequest && op != OpReply {
		return nil, ErrOp
	}
	return p, nil
}

// Op returns the operation.
func (p Packet) Op() uint16 { return binary.BigEndian.Uint16(p[6:8]) }

// SenderMAC returns the sender hardware address.
func (p Packet) SenderMAC() (m ethernet.MAC) { copy(m[:], p[8:14]); return }

// SenderIP returns the sender protocol address.
func (p Packet) SenderIP() netip.Addr { return netip.AddrFrom4([4]byte(p[14:18])) }

// TargetMAC returns the target hardware address.
func (p Packet) TargetMAC() (m ethernet.MAC) { copy(m[:], p[18:24]); return }

// TargetIP returns the target protocol address.
func (p Packet) TargetIP() netip.Addr { return netip.AddrFrom4([4]byte(p[24:28])) }

// Put writes an ARP packet into b[:28].
func Put(b []byte, op uint16, senderMAC ethernet.MAC, senderIP netip.Addr, targetMAC ethernet.MAC, targetIP netip.Addr) {
	_ = b[PacketLen-1]
	binary.BigEndian.PutUint16(b[0:2], htypeEther)
	binary.BigEndian.PutUint16(b[2:4], ptypeIPv4)
	b[4], b[5] = hlenEthernet, plenIPv4
	binary.BigEndian.PutUint16(b[6:8], op)
	copy(b[8:14], senderMAC[:])
	s, t := senderIP.As4(), targetIP.As4()
	copy(b[14:18], s[:])
	copy(b[18:24], targetMAC[:])
	copy(b[24:28], t[:])
}
