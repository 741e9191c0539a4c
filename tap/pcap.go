package tap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Classic libpcap file format constants.
const (
	PcapMagic        = 0xa1b2c3d4 // microsecond timestamps
	PcapMagicNano    = 0xa1b23c4d // nanosecond timestamps
	PcapSnapLen      = 65535
	LinkTypeEthernet = 1
	LinkTypeRaw      = 101 // bare IPv4 or IPv6 packets: IP links (a TUN)

	pcapHeaderLen = 24
	pcapRecordLen = 16
	// pcapMaxRecord bounds a record a reader accepts, so a corrupt length
	// cannot make it allocate gigabytes.
	pcapMaxRecord = 1 << 18
)

// PcapFile is a parsed capture.
type PcapFile struct {
	VersionMajor, VersionMinor uint16
	SnapLen                    uint32
	LinkType                   uint32
	Nanosecond                 bool // timestamps had nanosecond resolution
	Records                    []PcapRecord
}

// PcapRecord is one captured frame.
type PcapRecord struct {
	Time    time.Time
	Data    []byte // the captured bytes, at most SnapLen
	OrigLen int    // the frame's length on the wire
}

var errPcapFormat = errors.New("tap: not a pcap file")

// ReadPcap parses a classic pcap stream of either byte order.
func ReadPcap(r io.Reader) (*PcapFile, error) {
	var h [pcapHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("tap: reading pcap header: %w", err)
	}
	var bo binary.ByteOrder
	f := &PcapFile{}
	switch {
	case binary.LittleEndian.Uint32(h[:]) == PcapMagic:
		bo = binary.LittleEndian
	case binary.BigEndian.Uint32(h[:]) == PcapMagic:
		bo = binary.BigEndian
	case binary.LittleEndian.Uint32(h[:]) == PcapMagicNano:
		bo, f.Nanosecond = binary.LittleEndian, true
	case binary.BigEndian.Uint32(h[:]) == PcapMagicNano:
		bo, f.Nanosecond = binary.BigEndian, true
	default:
		return nil, errPcapFormat
	}
	f.VersionMajor = bo.Uint16(h[4:])
	f.VersionMinor = bo.Uint16(h[6:])
	f.SnapLen = bo.Uint32(h[16:])
	f.LinkType = bo.Uint32(h[20:])
	for {
		var rh [pcapRecordLen]byte
		if _, err := io.ReadFull(r, rh[:]); err != nil {
			if err == io.EOF {
				return f, nil
			}
			return f, fmt.Errorf("tap: reading pcap record %d: %w", len(f.Records), err)
		}
		sec, frac := bo.Uint32(rh[0:]), bo.Uint32(rh[4:])
		incl, orig := bo.Uint32(rh[8:]), bo.Uint32(rh[12:])
		if incl > pcapMaxRecord || incl > orig {
			return f, fmt.Errorf("tap: pcap record %d: bad length %d (orig %d)", len(f.Records), incl, orig)
		}
		data := make([]byte, incl)
		if _, err := io.ReadFull(r, data); err != nil {
			return f, fmt.Errorf("tap: reading pcap record %d: %w", len(f.Records), err)
		}
		if !f.Nanosecond {
			frac *= 1000
		}
		f.Records = append(f.Records, PcapRecord{
			Time:    time.Unix(int64(sec), int64(frac)),
			Data:    data,
			OrigLen: int(orig),
		})
	}
}

// pcapWriter writes a classic little-endian pcap stream with microsecond
// timestamps. It is not goroutine-safe; a capture serializes it.
type pcapWriter struct {
	w   io.Writer
	rec [pcapRecordLen]byte
}

func (p *pcapWriter) writeHeader(linkType uint32) error {
	var h [pcapHeaderLen]byte
	le := binary.LittleEndian
	le.PutUint32(h[0:], PcapMagic)
	le.PutUint16(h[4:], 2)
	le.PutUint16(h[6:], 4)
	// h[8:16]: time zone offset and accuracy, always zero.
	le.PutUint32(h[16:], PcapSnapLen)
	le.PutUint32(h[20:], linkType)
	_, err := p.w.Write(h[:])
	return err
}

func (p *pcapWriter) writeRecord(t time.Time, frame []byte) error {
	incl := min(len(frame), PcapSnapLen)
	le := binary.LittleEndian
	le.PutUint32(p.rec[0:], uint32(t.Unix()))
	le.PutUint32(p.rec[4:], uint32(t.Nanosecond()/1000))
	le.PutUint32(p.rec[8:], uint32(incl))
	le.PutUint32(p.rec[12:], uint32(len(frame)))
	if _, err := p.w.Write(p.rec[:]); err != nil {
		return err
	}
	_, err := p.w.Write(frame[:incl])
	return err
}
