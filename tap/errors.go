package tap

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Errors shared by the links. They are preallocated so that failing writes
// on a closed link do not allocate; match them with errors.Is.
var (
	// errClosed is returned by writes on a closed link.
	errClosed = fmt.Errorf("tap: link closed: %w", net.ErrClosed)
	// errPeerClosed is what a pipe end's reads return once the other end
	// closed.
	errPeerClosed = fmt.Errorf("tap: pipe peer closed: %w", net.ErrClosed)
	// errHubClosed is what a hub port's reads return once the hub closed.
	errHubClosed = fmt.Errorf("tap: hub closed: %w", net.ErrClosed)
	// errFrameSize is returned for frames shorter than their link header
	// (an empty IP packet) or longer than the MTU plus header, like a kernel socket's EMSGSIZE.
	errFrameSize = fmt.Errorf("tap: frame size out of range: %w", syscall.EMSGSIZE)
)

// errQueueFull reports a frame TryWriteFrames dropped.
var errQueueFull = errors.New("tap: queue full")

// errFrameBounds is returned for a link.Frame whose Off and Len reach outside
// its Buf.
var errFrameBounds = errors.New("tap: frame bounds outside its buffer")
