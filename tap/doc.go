// Package tap holds the devices behind the link seam (package link): a Linux
// TAP device, an in-memory pipe and learning hub with impairments, and a
// pcap capture that wraps any link.Device.
//
// Every device here implements link.Device and moves Ethernet II frames
// (package ethernet). Reads take a batch per wake-up: a TAP device reads
// every frame the kernel has queued, an in-memory link every frame waiting
// in its queue. The in-memory links copy each written frame into their own
// pooled memory and copy it out again on read, so neither side keeps the
// other's memory; they also implement link.TryWriter, whose non-blocking
// writes keep two stacks joined by a pipe from deadlocking against each
// other. Hot paths do not allocate.
package tap
