package tap

import (
	"fmt"
	"math"
	"time"
)

// Impairments make an in-memory link behave like a lossy network. They apply
// to the frames one pipe end sends, are drawn from the pipe's seeded random
// source by the reading end (so a given frame sequence and seed
// give the same outcome), and may be changed while frames flow.
type Impairments struct {
	// Loss is the probability that a frame is dropped.
	Loss float64
	// Duplicate is the probability that a frame is delivered twice (the
	// second time as a copy).
	Duplicate float64
	// Reorder is the probability that a frame is held back and delivered
	// right after the next one. A held frame with no successor is released
	// after reorderHold.
	Reorder float64
	// Delay is the latency added to every frame, counted from WriteFrames.
	Delay time.Duration
	// Jitter varies each frame's Delay uniformly within ±Jitter (never below
	// zero). Frames stay in order: one that becomes due earlier than its
	// predecessor waits for it.
	Jitter time.Duration
}

// reorderHold bounds how long a frame held back for reordering waits for a
// successor to overtake it.
const reorderHold = 10 * time.Millisecond

func (im Impairments) validate() {
	for _, p := range [...]float64{im.Loss, im.Duplicate, im.Reorder} {
		if !(p >= 0 && p <= 1) || math.IsNaN(p) {
			panic(fmt.Sprintf("tap: impairment probability %v outside [0, 1]", p))
		}
	}
	if im.Delay < 0 || im.Jitter < 0 {
		panic("tap: negative impairment delay")
	}
}

func (im *Impairments) none() bool { return *im == Impairments{} }
