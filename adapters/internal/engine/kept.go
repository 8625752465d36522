package engine

// This file holds the work a member keeps of the partitions it gave up:
// when a partition comes back to the same process (the next generation of
// a cooperative group, a client that rejoins after treating a failed
// JoinGroup or SyncGroup as a lost session, an eager rebalance whose commit
// at revoke did not land), the offsets this process handled before are not
// handled again.
//
// Why it is safe. At-least-once needs every message handled once; what a
// released partition had done (acked: handled, skipped by policy, or dead
// lettered, exactly what its commit would have covered) was handled, by
// this process, whatever happened to the commit. Those offsets are restored
// as done on the next assignment, as commit metadata restores them: they
// are fetched again and counted restored, not handed to the handler, and
// the commit point passes them. What was in flight at the release, or
// queued, is not kept (it was not done).
//
// What could make a kept offset stale is the log changing under the same
// name (a topic deleted and created again) or an operator resetting the
// group's offsets backwards to handle messages again. So a record is used
// only if the partition comes back within keptFor, and only if the group's
// commit it comes back with is not below the last commit this process saw
// land for it; otherwise it is dropped. Not in exactly-once mode: there,
// done above the last committed transaction is not durable (the
// transaction that carried its outputs may have aborted).

import (
	"sync"
	"time"

	"github.com/inorder/inorder/ordset"
)

// keptFor is how long the done work of a released partition is kept for
// its return to this process.
const keptFor = time.Minute

// kept is what a released partition had done.
type kept struct {
	at        time.Time
	committed int64       // the last commit of the partition that landed
	point     int64       // every offset below was done (the commit point)
	done      *ordset.Set // done offsets at or above point
}

type keptState struct {
	mu sync.Mutex
	m  map[TopicPartition]kept
}

// keep records what p had done when it was released: after its close, when
// no ack counts and no commit of p runs any more.
func (e *Engine[M]) keep(p *Part) {
	done := ordset.New()
	point := p.wm.Snapshot(done)
	k := kept{at: time.Now(), committed: p.committed.Load(), point: point, done: done}
	e.kept.mu.Lock()
	defer e.kept.mu.Unlock()
	if e.kept.m == nil {
		e.kept.m = make(map[TopicPartition]kept)
	}
	now := k.at
	for tp, old := range e.kept.m { // a few partitions: drop the expired ones
		if now.Sub(old.at) >= keptFor {
			delete(e.kept.m, tp)
		}
	}
	e.kept.m[p.TP] = k
}

// unkeep takes the kept record of tp, assigned again at the group's commit
// committed, and returns done (the offsets the commit metadata marks done;
// nil for none) with the offsets at or above committed that this process
// had done added, and how many it added. done is not modified.
func (e *Engine[M]) unkeep(tp TopicPartition, committed int64, done *ordset.Set) (*ordset.Set, int64) {
	e.kept.mu.Lock()
	k, ok := e.kept.m[tp]
	delete(e.kept.m, tp)
	e.kept.mu.Unlock()
	if !ok || time.Since(k.at) >= keptFor || committed < k.committed {
		return done, 0
	}
	out := ordset.New()
	if done != nil {
		out = done.Clone()
	}
	before := out.Len()
	if k.point > committed {
		out.AddRange(committed, k.point)
	}
	for lo, hi := range k.done.RangesFrom(committed) {
		out.AddRange(max(lo, committed), hi)
	}
	return out, out.Len() - before
}
