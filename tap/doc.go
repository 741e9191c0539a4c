// Package tap provides link endpoints: TAP device, in-memory pipe and hub,
// packet capture.
//
// Every endpoint implements Link and moves Ethernet frames held in pooled
// buffers (internal/buffer). One goroutine per link delivers received frames
// in order; writers send from their own goroutine. Hot paths do not allocate.
package tap
