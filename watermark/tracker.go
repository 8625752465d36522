package watermark

// This file is the only one that uses github.com/puzpuzpuz/xsync: a move to
// xsync/v4 touches nothing else.

import (
	"iter"

	"github.com/puzpuzpuz/xsync/v3"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Tracker holds the partitions assigned to one consumer, keyed by
// TopicPartition in a concurrent hash map (xsync.MapOf). Every method is safe
// for concurrent use. The ack path never touches the map: acks go to the
// *Partition returned by Assign, so an ack that races with Revoke lands in
// the closed, revoked partition and never in a newer assignment of the same
// topic-partition.
type Tracker struct {
	opts []Option
	m    *xsync.MapOf[TopicPartition, *Partition]
}

// NewTracker returns an empty tracker. opts apply to every partition it
// creates; it panics if one is invalid (see WithWindow).
func NewTracker(opts ...Option) *Tracker {
	buildConfig(opts) // validate now rather than at the first Assign
	return &Tracker{opts: opts, m: xsync.NewMapOf[TopicPartition, *Partition]()}
}

// Assign creates the partition for tp starting at start (its committed
// offset), closing any earlier partition for tp, and returns it.
func (t *Tracker) Assign(tp TopicPartition, start int64) *Partition {
	p := NewPartition(start, t.opts...)
	if old, ok := t.m.LoadAndStore(tp, p); ok {
		old.Close()
	}
	return p
}

// Revoke closes the partition for tp, removes it and returns it (its
// Committable still answers, for a final commit). It returns false if tp is
// not assigned.
func (t *Tracker) Revoke(tp TopicPartition) (*Partition, bool) {
	p, ok := t.m.LoadAndDelete(tp)
	if ok {
		p.Close()
	}
	return p, ok
}

// Partition returns the partition for tp, if assigned.
func (t *Tracker) Partition(tp TopicPartition) (*Partition, bool) {
	return t.m.Load(tp)
}

// All returns the assigned partitions, in no particular order. Partitions
// assigned or revoked during the iteration may or may not be seen.
func (t *Tracker) All() iter.Seq2[TopicPartition, *Partition] {
	return func(yield func(TopicPartition, *Partition) bool) {
		t.m.Range(yield)
	}
}

// Len returns the number of assigned partitions.
func (t *Tracker) Len() int { return t.m.Size() }
