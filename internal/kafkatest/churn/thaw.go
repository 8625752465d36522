package churn

// This file closes the ghost guard's hole after a freeze (see ThawGuard).

import "time"

// ThawGuard keeps a member resumed from a freeze from being killed before
// it has rejoined the group.
//
// The harness kills only members that have handled a message: a member
// SIGKILLed during its first join can become a ghost the embedded broker
// never evicts (see the package doc). A member frozen past its session
// timeout is evicted meanwhile; once resumed it rejoins under a new member
// id, which for the broker is a first join again, so the same kill makes
// the same ghost (issue 25's stuck run started so). Its handled count does
// not tell: it handled messages before the freeze, and may finish some
// right after the resume.
//
// After a thaw the member is clear again only once Wait (the session
// timeout plus the rebalance timeout: time to notice the lost session and
// to rejoin) has passed AND it has handled a message after that, which it
// can only do with partitions from a completed join. A member that gets no
// partition stays guarded; a run then kills others.
//
// The zero value is clear. Not safe for concurrent use (the run loop owns
// it).
type ThawGuard struct {
	until time.Time // zero: clear
	base  int       // the handled count at or after until; -1: not taken yet
}

// Thawed records that the member was resumed at now; wait is the session
// timeout plus the rebalance timeout.
func (g *ThawGuard) Thawed(now time.Time, wait time.Duration) {
	g.until, g.base = now.Add(wait), -1
}

// Clear reports whether the member may be killed at now, given handled, the
// number of messages it has handled so far. Call it on every tick of the
// run loop: the count it compares with is the one of the first call after
// the wait.
func (g *ThawGuard) Clear(now time.Time, handled int) bool {
	switch {
	case g.until.IsZero():
		return true
	case now.Before(g.until):
		return false
	case g.base < 0:
		g.base = handled
		return false
	case handled > g.base:
		g.until = time.Time{}
		return true
	}
	return false
}
