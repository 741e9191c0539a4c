//go:build !(linux || windows || darwin || dragonfly || freebsd || netbsd || openbsd)

package gonet

// Message flags of ReadBatch, WriteBatch and ReadMsgUDP: Linux's values,
// for systems whose syscall package lacks some of them.
const (
	MsgPeek     = 0x2  // ReadBatch: leave the datagram queued
	MsgDontWait = 0x40 // ReadBatch, WriteBatch: never block
	MsgTrunc    = 0x20 // reported: the datagram was cut to fit
	MsgCtrunc   = 0x8  // reported: control messages were cut

	msgWaitForOne = 0x10000
)
