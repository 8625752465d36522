package engine

// This file holds one owned partition's state beyond its watermark (its
// life cycle as one state machine), and the statistics the adapters expose.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark"
)

// Part is a partition owned by a Session. Deliver and SkipTo take it.
type Part struct {
	TP TopicPartition
	wm *watermark.Partition

	since int64 // mono time of the assignment (frozen.go); set before delivery

	logEnd    atomic.Int64 // last high watermark the fetch saw (-1 unknown); fetch goroutine writes
	committed atomic.Int64 // last offset the broker accepted from this session; commit path writes
	commits   atomic.Int64
	misses    atomic.Int64 // commits whose metadata did not fit
	restored  atomic.Int64 // deliveries skipped thanks to commit metadata
	errors    atomic.Int64 // handler errors and panics
	retries   atomic.Int64 // failed handler calls retried
	dead      atomic.Int64 // messages the dead letter took
	deadFails atomic.Int64 // dead letter calls that failed
	unackable atomic.Int64 // tracked offsets that will never be acked (Stop policy, undispatched); see addUnackable

	// state is the partition's life cycle (see State); written only by
	// move. revoking mirrors state >= StateRevoking for the delivery hot
	// path (one plain bool load); move sets it before the state.
	state    atomic.Int32
	revoking atomic.Bool

	m *partMetrics // metrics.go; set by Session.Assign before the first delivery

	sq any // the scheduler's lane of the partition (*partQ[M]); under the scheduler's lock

	// The assignment's handler context: cancelled when the revoke (or
	// loss) has closed the partition, so that calls still running past the
	// revoke's deadline are told to stop.
	ctx    context.Context
	cancel context.CancelFunc
	gone   chan struct{} // closed with cancel

	// Intake and flow (flow.go).
	in      any          // *intake[M]
	next    atomic.Int64 // one past the highest offset offered
	bytes   atomic.Int64 // buffered bytes of the partition
	flowMu  sync.Mutex
	flowCh  chan struct{} // closed when want changes (WaitFlow)
	want    atomic.Bool   // the engine wants the partition paused
	over    atomic.Bool   // ... for the budget (counted in flowState.nover)
	applied bool          // the client has it paused; adapter's goroutine only

	lastErrLog     atomic.Int64 // unix nanos of the last handler error logged; workers write
	errLogsSkipped atomic.Int64 // handler errors not logged since (rate limit)

	wakeMu    sync.Mutex
	wakeDrain context.CancelFunc // set by a waiting drain; addUnackable calls it

	txo *txnOuts // exactly-once mode: outputs of handled messages not yet committed (txn.go)

	// Commit path only (under Session.commitMu).
	lastMeta    string
	lastSig     [3]int64 // commit point, high, pending before the last snapshot
	lastMissLog time.Time
	snap        *ordset.Set

	// Commit tick only (under Session.tickMu): the stuck watchdog,
	// sampled on each tick.
	stuckPoint  int64     // commit point at stuckSince
	stuckSince  time.Time // zero: nothing pending at the last tick
	stuckLogged bool      // this episode was logged
}

// State is a partition's place in its life cycle:
//
//	Assigned → Active ⇄ Paused → Revoking → Closed
//	    └──────────┴───────┴─────────┴──────→ Lost
//
// Every change goes through the Part (one state machine, one writer
// function); adapters ask it (State, Revoked) and keep no copy of their own.
type State int32

const (
	// StateAssigned: owned, nothing delivered or skipped yet.
	StateAssigned State = iota
	// StateActive: owned and fetched.
	StateActive
	// StatePaused: the adapter paused fetching it (window full), see
	// Part.SetPaused.
	StatePaused
	// StateRevoking: Session.Revoke is draining and committing it; its
	// queued messages are no longer handed out.
	StateRevoking
	// StateClosed: revoked; late acks are ignored, no commit is issued.
	StateClosed
	// StateLost: dropped without commit (Session.Lose); late acks are
	// ignored, no commit is issued.
	StateLost
)

func (s State) String() string {
	switch s {
	case StateAssigned:
		return "assigned"
	case StateActive:
		return "active"
	case StatePaused:
		return "paused"
	case StateRevoking:
		return "revoking"
	case StateClosed:
		return "closed"
	case StateLost:
		return "lost"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// stored states: StateAssigned stands for "live, not paused"; State tells
// Assigned from Active by the watermark's high mark, so that delivery pays
// nothing for the distinction.
const stLive = int32(StateAssigned)

// move changes the state to to if the transition is allowed from the
// current state, and reports whether it did. It is the only writer of
// state. Allowed: live ⇄ paused; live or paused → revoking; revoking →
// closed; any state but closed → lost (a loss during a revoke wins: no
// commit after it).
func (p *Part) move(to State) bool {
	for {
		from := p.state.Load()
		ok := false
		switch to {
		case StateAssigned:
			ok = from == int32(StatePaused)
		case StatePaused:
			ok = from == stLive
		case StateRevoking:
			ok = from == stLive || from == int32(StatePaused)
		case StateClosed:
			ok = from == int32(StateRevoking)
		case StateLost:
			ok = from != int32(StateClosed) && from != int32(StateLost)
		}
		if !ok {
			return false
		}
		if to >= StateRevoking {
			p.revoking.Store(true) // before the state: Revoked is true no later
		}
		if p.state.CompareAndSwap(from, int32(to)) {
			return true
		}
	}
}

// State returns the partition's life-cycle state. Any goroutine; it does
// not block.
func (p *Part) State() State {
	st := State(p.state.Load())
	if st == StateAssigned && p.wm.High() > p.wm.Start() {
		return StateActive
	}
	return st
}

// SetPaused records that the adapter paused (true) or resumed (false)
// fetching the partition, and reports whether the state changed: it does
// not once the partition is revoking, closed or lost. Fetch goroutine of p
// (or whichever goroutine pauses it for the client); it does not block.
func (p *Part) SetPaused(paused bool) bool {
	if paused {
		return p.move(StatePaused)
	}
	return p.move(StateAssigned)
}

// closed reports whether no commit may be issued for p any more.
func (p *Part) closed() bool {
	st := State(p.state.Load())
	return st == StateClosed || st == StateLost
}

// addUnackable counts one more tracked offset that will never be acked and
// wakes a drain waiting on the partition, so that it can stop waiting for it.
func (p *Part) addUnackable() {
	p.unackable.Add(1)
	p.wakeMu.Lock()
	if p.wakeDrain != nil {
		p.wakeDrain()
	}
	p.wakeMu.Unlock()
}

// Revoked reports whether the partition is being revoked or lost, or was
// (State is StateRevoking, StateClosed or StateLost): its messages are no
// longer handed to the handler and the adapter should stop fetching it.
// Any goroutine; it does not block.
func (p *Part) Revoked() bool { return p.revoking.Load() }

// Watermark returns the partition's tracker.
func (p *Part) Watermark() *watermark.Partition { return p.wm }

// SetLogEnd records the partition's high watermark as seen by a fetch, for
// the lag statistic. Any goroutine.
func (p *Part) SetLogEnd(v int64) { p.logEnd.Store(v) }

// Committed returns the last offset this session committed (or the offset
// the partition was assigned at). Any goroutine.
func (p *Part) Committed() int64 { return p.committed.Load() }

// PartitionStats describes one owned partition.
type PartitionStats struct {
	Topic     string
	Partition int32
	// CommitPoint: every offset below it is handled (or a gap).
	CommitPoint int64
	// Committed: the last offset the broker accepted from this member.
	Committed int64
	// High: one past the highest offset fetched.
	High int64
	// Pending: fetched and not yet handled.
	Pending int64
	// LogEnd: the partition's high watermark at the last fetch or commit
	// tick (-1 unknown).
	LogEnd int64
	// Lag: LogEnd - CommitPoint (0 if LogEnd is unknown).
	Lag int64
	// Stuck: how long the commit point has not moved while messages are
	// pending (measured between Stats calls and commit ticks).
	Stuck time.Duration
	// Commits: commits the broker accepted for this partition.
	Commits int64
	// MetadataMisses: commits whose done-set did not fit MetadataMaxBytes
	// (committed with a shorter prefix of it).
	MetadataMisses int64
	// Restored: fetched messages not handed to the handler because the
	// commit metadata marked them done.
	Restored int64
	// Errors: handler errors and panics.
	Errors int64
	// State: where the partition is in its life cycle.
	State State
	// Retries: failed handler calls followed by another attempt.
	Retries int64
	// DeadLettered: messages acked after the dead letter took them.
	DeadLettered int64
	// DeadLetterFailures: dead letter calls that failed (and were retried).
	DeadLetterFailures int64
}

func (p *Part) stats() PartitionStats {
	ws := p.wm.Stats()
	le := p.logEnd.Load()
	s := PartitionStats{
		Topic:          p.TP.Topic,
		Partition:      p.TP.Partition,
		CommitPoint:    ws.Committable,
		Committed:      p.committed.Load(),
		High:           ws.High,
		Pending:        ws.Pending,
		LogEnd:         le,
		Stuck:          ws.Stuck,
		Commits:        p.commits.Load(),
		MetadataMisses: p.misses.Load(),
		Restored:       p.restored.Load(),
		Errors:         p.errors.Load(),
		State:          p.State(),

		Retries:            p.retries.Load(),
		DeadLettered:       p.dead.Load(),
		DeadLetterFailures: p.deadFails.Load(),
	}
	if le >= 0 {
		s.Lag = max(0, le-ws.Committable)
	}
	return s
}

// logTurn reports whether a handler or dead-letter error of p may be logged
// now: at most once a second per partition; the ones left out are counted
// in errLogsSkipped, which the next logged line reports. Any goroutine.
func (p *Part) logTurn() bool {
	now := time.Now().UnixNano()
	last := p.lastErrLog.Load()
	if now-last < int64(time.Second) || !p.lastErrLog.CompareAndSwap(last, now) {
		p.errLogsSkipped.Add(1)
		return false
	}
	return true
}
