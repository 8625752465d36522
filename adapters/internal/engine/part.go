package engine

// This file holds one owned partition's state beyond its watermark, and the
// statistics the adapters expose.

import (
	"context"
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

	revoking atomic.Bool // set first thing at revoke or loss: queued messages are dropped; session writes

	sq any // the scheduler's queue of the partition (*partQ[M]); under the scheduler's lock

	lastErrLog     atomic.Int64 // unix nanos of the last handler error logged; workers write
	errLogsSkipped atomic.Int64 // handler errors not logged since (rate limit)

	wakeMu    sync.Mutex
	wakeDrain context.CancelFunc // set by a waiting drain; addUnackable calls it

	// Commit path only (under Session.commitMu).
	lastMeta    string
	lastMissLog time.Time
	snap        *ordset.Set
	revoked     bool
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

// Revoked reports whether the partition is being revoked or lost, or was:
// its messages are no longer handed to the handler and the adapter should
// stop fetching it. Any goroutine.
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
	// LogEnd: the partition's high watermark at the last fetch (-1 unknown).
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

		Retries:            p.retries.Load(),
		DeadLettered:       p.dead.Load(),
		DeadLetterFailures: p.deadFails.Load(),
	}
	if le >= 0 {
		s.Lag = max(0, le-ws.Committable)
	}
	return s
}
