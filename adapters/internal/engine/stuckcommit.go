package engine

// This file holds the workers back when a commit call has not returned for
// longer than the session timeout, with a client whose commit calls cannot
// be cancelled (Config.ClientWaitsForCommits: librdkafka).
//
// Such a commit waits for a group coordinator that does not answer: it is
// gone (moved, its broker down) or hung. The member's heartbeats go to that
// same coordinator, so after the session timeout the group has evicted the
// member and given its partitions to others, which start at the last
// commit; but the client learns of it only when a coordinator answers
// again. Meanwhile the workers went on with the queued messages of those
// partitions, each one handled by the new owner too (chaos -faults,
// confluent cooperative: a member handled one partition from 642 to 5,721
// in the 5 s between its eviction and librdkafka's verdict). From the
// moment the freeze detector (frozen.go) sees a commit call running for
// FrozenAfter, a worker about to start a message of a partition assigned
// before that call waits until the call returns (the coordinator answered:
// the client now knows whether the member is still in the group) or the
// partition is revoked or lost (the message is then dropped, as any
// message of a released partition). The cost when no commit is stuck is
// one atomic load per message, beside the freeze detector's.

import "time"

// commitStarts records that a commit call starts, when the hold applies,
// and returns the function that records its end.
func (e *Engine[M]) commitStarts() func() {
	if !e.cfg.ClientWaitsForCommits || e.cfg.FrozenAfter <= 0 {
		return func() {}
	}
	start := mono()
	e.frozen.commitStart.Store(start)
	return func() { e.frozen.commitStart.CompareAndSwap(start, 0) }
}

// checkStuck starts the hold when the commit call running has run for
// FrozenAfter at now; the detector ends it once that call has returned
// (over). Freeze detector goroutine only.
func (e *Engine[M]) checkStuck(now int64) {
	start, h := e.frozen.commitStart.Load(), e.frozen.holds[holdCommit].Load()
	if start == 0 || (h != nil && h.since == start) || time.Duration(now-start) < e.cfg.FrozenAfter {
		return
	}
	e.frozen.holds[holdCommit].Store(&hold{since: start})
	e.log.Warn("inorder: a commit has not returned for longer than the session timeout: the coordinator does not answer and the group has likely evicted this member; "+
		"the queued messages of its partitions wait until the commit returns or the client reports them revoked or lost",
		"waiting", time.Duration(now-start).Round(time.Millisecond), "session_timeout", e.cfg.FrozenAfter)
}
