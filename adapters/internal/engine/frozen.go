package engine

// This file notices that the process was frozen (SIGSTOP, a paused VM or
// container, a suspended laptop) for longer than the session timeout, and
// keeps the workers from starting the queued messages of the partitions
// the group has moved meanwhile.
//
// A frozen process sends no heartbeats: after the session timeout the
// coordinator evicts the member and gives its partitions to others, which
// start at the last commit. When the process wakes, its workers would go on
// with the messages already queued for those partitions until the client
// notices (a heartbeat answered UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION)
// and the adapter calls Lose or Revoke: about a heartbeat interval of
// handler calls on every worker, each one handled by the new owner too.
// (Measured with the chaos command's frozen members: hundreds of
// duplicates per freeze where the calls in flight were 16.)
//
// A goroutine ticks every frozenTick; a gap of FrozenAfter or more between
// two ticks means the process did not run for that long. Until the hold
// ends, nothing is committed for the partitions assigned before the gap,
// and a revoke of one is a loss (frozenOut). From then on a
// worker about to start a message of a partition assigned before the gap
// waits until the partition is revoked or lost (the message is then
// dropped, as any message of a released partition) or, if the client
// reports nothing for 2×FrozenAfter after the wake, the membership survived
// and the work goes on. The cost when nothing froze is one atomic load per
// message.
//
// The same hold, with another end, holds the workers while a commit call
// is stuck (stuckcommit.go). Each reason has its own slot: a freeze and a
// stuck commit are often seen at the same tick (a process frozen while a
// commit was in flight), and each keeps its end and its effect on commits.

import (
	"sync/atomic"
	"time"
)

const (
	frozenTick = 50 * time.Millisecond // period of the freeze detector
	frozenPoll = 10 * time.Millisecond // how often a held worker re-checks
	// frozenHold: a hold ends this many FrozenAfter after the wake without
	// a verdict. The client needs a heartbeat's answer to learn of the
	// eviction, and the coordinator may be moving or unreachable then.
	frozenHold = 2
)

// monoEpoch anchors mono: durations since it are monotonic clock readings.
var monoEpoch = time.Now()

// mono returns the monotonic time in nanoseconds since monoEpoch.
func mono() int64 { return int64(time.Since(monoEpoch)) }

// The slots of frozenState.holds: the reasons to hold.
const (
	holdCommit = iota // a commit call running past FrozenAfter (stuckcommit.go)
	holdFreeze        // the process did not run for FrozenAfter
)

// hold keeps the workers from starting a message of a partition assigned
// at or before since (mono) until it is over, or the partition is revoked
// or lost. Immutable once published.
type hold struct {
	since int64 // freeze: the last tick before it; commit: the call's start
	until int64 // freeze: when it ends without a verdict (mono); commit: 0
}

// over reports whether h has ended: for a freeze frozenHold×FrozenAfter
// after the wake, for a commit when the stuck call returned.
func (e *Engine[M]) over(h *hold) bool {
	if h.until != 0 {
		return mono() >= h.until
	}
	return e.frozen.commitStart.Load() != h.since
}

// frozenState is the freeze detector's finding, read by the workers.
type frozenState struct {
	holds       [2]atomic.Pointer[hold] // by reason; nil: none. The detector sets and clears them
	commitStart atomic.Int64            // mono start of the commit call running (stuckcommit.go); 0: none
	held        atomic.Int64            // workers that waited in afterFreeze, ever
}

// holding reports whether a hold may be on: the workers' gate.
func (f *frozenState) holding() bool {
	return f.holds[holdCommit].Load() != nil || f.holds[holdFreeze].Load() != nil
}

// frozenLoop is the freeze detector; it runs until Stop.
func (e *Engine[M]) frozenLoop() {
	t := time.NewTicker(frozenTick)
	defer t.Stop()
	last := mono()
	for {
		select {
		case <-e.quit:
			return
		case <-t.C:
		}
		now := mono()
		for i := range e.frozen.holds {
			if h := e.frozen.holds[i].Load(); h != nil && e.over(h) {
				e.frozen.holds[i].CompareAndSwap(h, nil)
			}
		}
		e.sawGap(last, now)
		e.checkStuck(now) // stuckcommit.go
		last = now
	}
}

// sawGap records a freeze if the detector's ticks at last and now (mono
// times) are FrozenAfter or more apart.
func (e *Engine[M]) sawGap(last, now int64) {
	gap := time.Duration(now - last)
	if gap < e.cfg.FrozenAfter {
		return
	}
	e.frozen.holds[holdFreeze].Store(&hold{since: last, until: now + int64(frozenHold*e.cfg.FrozenAfter)})
	e.log.Warn("inorder: the process did not run for longer than the session timeout: the group has likely moved its partitions; their queued messages wait until the client confirms",
		"paused", gap.Round(time.Millisecond), "session_timeout", e.cfg.FrozenAfter)
}

// afterFreeze holds a worker about to start a message of p while a hold
// covers p: a stuck commit's, then a freeze's (see the file comment). It
// returns when p is revoked or lost, when the holds that cover p are over,
// or at Stop.
func (e *Engine[M]) afterFreeze(p *Part) {
	for i := range e.frozen.holds {
		h := e.frozen.holds[i].Load()
		if h == nil || p.since > h.since || e.over(h) {
			continue
		}
		e.frozen.held.Add(1)
		t := time.NewTicker(frozenPoll)
		defer t.Stop()
		for !p.revoking.Load() && !e.over(h) {
			select {
			case <-e.quit:
				return
			case <-t.C:
			}
		}
	}
}

// frozenOut reports whether p was assigned before a freeze whose hold is
// still on: its assignment is dead (the group evicted the member), so
// nothing is committed for it; a commit accepted under the member's next
// generation would take the partition's commit back below what its new
// owner committed meanwhile (seen with kgo's cooperative rejoin, which
// calls the revoke callback, not the lost one, after such a freeze).
func (e *Engine[M]) frozenOut(p *Part) bool {
	h := e.frozen.holds[holdFreeze].Load()
	return h != nil && p.since <= h.since && !e.over(h)
}

// splitFrozen splits parts into those that may be committed and those
// frozenOut.
func (e *Engine[M]) splitFrozen(parts []*Part) (live, dead []*Part) {
	if e.frozen.holds[holdFreeze].Load() == nil {
		return parts, nil
	}
	for _, p := range parts {
		if e.frozenOut(p) {
			dead = append(dead, p)
		} else {
			live = append(live, p)
		}
	}
	return live, dead
}
