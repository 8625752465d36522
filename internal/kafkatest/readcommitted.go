package kafkatest

// This file reads what a read_committed consumer sees of a topic: the
// check of an exactly-once test.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadCommitted reads every partition of topic from its log start up to
// its last stable offset (as of the call) with read_committed isolation,
// and returns the records a read_committed consumer sees (committed
// transactional and non-transactional records; no aborted record, no
// transaction marker), by partition in offset order of fetch. It fetches
// whole partitions (large fetch sizes): the embedded broker drops the
// aborted-transaction list of a partition cut by a fetch size (DESIGN.md).
// Safe for concurrent use.
func (c *Cluster) ReadCommitted(ctx context.Context, topic string) ([]*kgo.Record, error) {
	lso, err := c.stableEnds(ctx, topic)
	if err != nil {
		return nil, err
	}
	left := 0
	for _, end := range lso {
		if end > 0 {
			left++
		}
	}
	opts := append(c.clientOpts(),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), // the markers tell where a partition's stable part ends
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(64<<20),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: read committed %q: %w", topic, err)
	}
	defer cl.Close()
	seen := make(map[int32]int64) // one past the highest offset fetched
	var out []*kgo.Record
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("kafkatest: read committed %q: %d partitions short of their stable end: %w", topic, left, err)
		}
		for _, fe := range fs.Errors() {
			return out, fmt.Errorf("kafkatest: read committed %q partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end := lso[r.Partition]
			if r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if seen[r.Partition] < end && r.Offset+1 >= end {
				left--
			}
			seen[r.Partition] = r.Offset + 1
		})
	}
	return out, nil
}

// WaitStable waits until no transaction is open on topic (every
// partition's last stable offset equals its log end), polling every 50ms,
// or until ctx ends. A process killed with a transaction open holds its
// partitions' last stable offset until the transaction times out (or a
// producer with its transactional id starts): a read_committed reader does
// not see past it meanwhile.
func (c *Cluster) WaitStable(ctx context.Context, topic string) error {
	for {
		lso, err := c.stableEnds(ctx, topic)
		if err != nil {
			return err
		}
		ends, err := c.LogEnd(ctx, topic)
		if err != nil {
			return err
		}
		open := 0
		for p, e := range ends {
			if lso[p] < e {
				open++
			}
		}
		if open == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafkatest: %q: %d partitions with an open transaction: %w", topic, open, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stableEnds returns the last stable offset of every partition of topic.
func (c *Cluster) stableEnds(ctx context.Context, topic string) (map[int32]int64, error) {
	return c.listEnds(ctx, topic, 1)
}
