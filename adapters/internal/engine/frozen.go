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

// frozenState is the freeze detector's finding, read by the workers.
type frozenState struct {
	woke    atomic.Int64 // mono time of the wake after the last freeze; 0: no hold
	frozeAt atomic.Int64 // mono time of the last tick before that freeze
	held    atomic.Int64 // workers that waited in afterFreeze, ever

	// A commit call that does not return (stuckcommit.go).
	stuckSince atomic.Int64 // mono start of the commit call running; 0: none
	stuckSeen  atomic.Int64 // stuckSince of the call found running past FrozenAfter; 0: no hold
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
	e.frozen.frozeAt.Store(last)
	e.frozen.woke.Store(now)
	e.log.Warn("inorder: the process did not run for longer than the session timeout: the group has likely moved its partitions; their queued messages wait until the client confirms",
		"paused", gap.Round(time.Millisecond), "session_timeout", e.cfg.FrozenAfter)
}

// afterFreeze holds a worker about to start a message of p while a freeze
// longer than FrozenAfter is unresolved (see the file comment). It returns
// when p is revoked or lost, when p was assigned after the freeze, when
// 2×FrozenAfter has passed since the wake (the hold ends for every
// partition), or at Stop.
func (e *Engine[M]) afterFreeze(p *Part) {
	e.afterStuckCommit(p) // stuckcommit.go
	woke := e.frozen.woke.Load()
	if woke == 0 || p.since > e.frozen.frozeAt.Load() {
		return
	}
	e.frozen.held.Add(1)
	t := time.NewTicker(frozenPoll)
	defer t.Stop()
	for !p.revoking.Load() {
		if time.Duration(mono()-woke) >= frozenHold*e.cfg.FrozenAfter {
			e.frozen.woke.CompareAndSwap(woke, 0)
			return
		}
		select {
		case <-e.quit:
			return
		case <-t.C:
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
	woke := e.frozen.woke.Load()
	if woke == 0 || p.since > e.frozen.frozeAt.Load() {
		return false
	}
	if time.Duration(mono()-woke) >= frozenHold*e.cfg.FrozenAfter {
		e.frozen.woke.CompareAndSwap(woke, 0)
		return false
	}
	return true
}

// splitFrozen splits parts into those that may be committed and those
// frozenOut.
func (e *Engine[M]) splitFrozen(parts []*Part) (live, dead []*Part) {
	if e.frozen.woke.Load() == 0 {
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
