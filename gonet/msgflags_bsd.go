//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package gonet

import "syscall"

// Message flags of ReadBatch, WriteBatch and ReadMsgUDP: the system's own,
// so that syscall's and x/sys/unix's constants work too.
const (
	MsgPeek     = syscall.MSG_PEEK     // ReadBatch: leave the datagram queued
	MsgDontWait = syscall.MSG_DONTWAIT // ReadBatch, WriteBatch: never block
	MsgTrunc    = syscall.MSG_TRUNC    // reported: the datagram was cut to fit
	MsgCtrunc   = syscall.MSG_CTRUNC   // reported: control messages were cut

	// The BSDs have no MSG_WAITFORONE to accept (x/net reads one message
	// per ReadBatch there).
	msgWaitForOne = 0
)
