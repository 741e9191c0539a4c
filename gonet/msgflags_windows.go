package gonet

// Message flags of ReadBatch, WriteBatch and ReadMsgUDP: Winsock's values
// where it has the flag (MSG_PEEK, MSG_TRUNC, MSG_CTRUNC), Linux's for
// MSG_DONTWAIT, which Winsock lacks.
const (
	MsgPeek     = 0x2   // ReadBatch: leave the datagram queued
	MsgDontWait = 0x40  // ReadBatch, WriteBatch: never block
	MsgTrunc    = 0x100 // reported: the datagram was cut to fit
	MsgCtrunc   = 0x200 // reported: control messages were cut

	msgWaitForOne = 0x10000
)
