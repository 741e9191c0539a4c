// Package tap holds the devices behind the link seam (package link): TAP
// and TUN devices, an in-memory pipe and learning hub with impairments, and
// a pcap capture that wraps any link.Device.
//
// A TAP device moves Ethernet II frames (package ethernet); a TUN device,
// opened with Options{Mode: ModeTUN}, moves bare IP packets
// (link.LayerIP), a point-to-point link with no ARP. The mode is an option
// rather than a second opener because everything else about opening is the
// same (the name, the MTU, and on Linux the vnet header and queues), as it
// is for `ip tuntap add mode tun` and for the kernel's TUNSETIFF. Pipes
// carry either layer (PipeOptions.Layer); the hub is an Ethernet switch.
//
// Reads take a batch per wake-up: a Linux device reads every frame the
// kernel has queued, an in-memory link every frame waiting in its queue.
// The in-memory links copy a written frame straight into the frames of a
// ReadFrames waiting at the other end, or else into their own pooled memory
// and out again on read, so neither side keeps the other's memory; a
// request and its answer thus cost one copy per hop. They also implement
// link.TryWriter, whose non-blocking writes keep two stacks joined by a
// pipe from deadlocking against each other. Hot paths do not allocate.
//
// # Devices on each system
//
// On Linux, Open uses tapnet's own opener on /dev/net/tun
// (IFF_TAP or IFF_TUN, with IFF_NO_PI), not github.com/songgao/water:
// water clears a persistent device's persist flag with TUNSETPERSIST(0) on
// every open, so a device made with `ip tuntap add` would vanish when the
// program exits, and it hands out a blocking descriptor that Close cannot
// interrupt, so a stack could not stop its reader. The Linux opener puts a
// non-blocking descriptor in Go's poller, and it is where IFF_VNET_HDR
// (checksum and segmentation offload) and IFF_MULTI_QUEUE live.
//
// Elsewhere Open moves one frame per call and is compiled and vetted in CI
// but not run there:
//
//   - macOS, through water: a TUN is the system's utun (name "utunN" or
//     empty; water strips and adds utun's 4-byte address family header,
//     at the cost of a copy per packet); a TAP, or a TUN named "tunN",
//     needs the third-party tuntaposx driver. utun's descriptor is in Go's
//     poller, so Close interrupts a blocked read.
//   - Windows, through water: OpenVPN's tap-windows6 adapter (tap0901),
//     TAP or emulated TUN (which needs Options.Network). Close closes the
//     handle, which should cancel water's pending overlapped read.
//   - FreeBSD: /dev/tapN and /dev/tunN directly (water's FreeBSD build only
//     returns "not implemented"); the nodes support kqueue, so os.OpenFile
//     puts them in Go's poller and Close interrupts a blocked read.
//   - Other systems: Open returns an error; Pipe and Hub work everywhere.
//
// # Offloads and queues on Linux
//
// Opened with Options.Offload, a TAP or TUN device puts a virtio-net header in
// front of every frame (IFF_VNET_HDR) and asks the kernel for checksum
// offload and UDP segmentation offload (TUN_F_CSUM, TUN_F_USO4/6; Linux
// 6.2+). The kernel then hands over a burst a local sender wrote with
// UDP_SEGMENT as one super-frame of up to 64 KiB, which the device splits
// into MTU-sized datagrams, one per frame of the stack's batch (the rest
// waits for the next ReadFrames, with no system call), copying each
// segment's payload once; frames whose checksum the kernel left partial or
// already verified arrive with link.FlagChecksumValid. On the way out, the
// device writes frames with a partial checksum (link.FlagChecksumPartial)
// and UDP super-frames (Frame.GSOSize) for the kernel to finish and cut,
// so a batch of datagrams to one destination costs one write. Both ways
// cover IPv4 and IPv6 alike: the header's UDP_L4 type is family-neutral,
// and its checksum start and header length point behind whichever IP
// header the frame carries. Splitting in
// the device rather than in the stack keeps the stack's buffers MTU-sized
// and its receive path unchanged; the copy costs far less than the system
// calls the super-frame saves. A header that lies (gso_size 0, sizes or
// checksum offsets beyond the frame) is dropped and counted in
// Stats.RxBadHeaders.
//
// Whatever the kernel refuses is left off and said in Stats().Offloads:
// a kernel before 6.2 gives checksum offload without segmentation
// (Options.NoUSO does the same on purpose), and a device that refuses
// virtio-net headers gives a plain TAP. Info reports what is on, so a
// stack uses only that. Close turns the kernel's offloads off again, for
// whoever attaches to a persistent device next.
//
// Options.Queues opens a multi-queue device (IFF_MULTI_QUEUE) with one
// file descriptor per queue; the kernel spreads flows across them, the
// Device implements link.Queuer, and a stack reads each queue from its own
// goroutine and spreads its writes by flow. QueueStats shows what each
// queue carried.
//
// Other systems' drivers have neither: there a device opened with Offload
// or Queues above 1 runs plain with one queue, and Stats().Offloads.Fallback
// says so.
package tap
