package kafkatest

// This file produces records with chosen keys and partitions, for the
// ordering tests (per key and per partition).

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// KeyedRecord is one record for ProduceKeyed: its partition, key (nil for
// a keyless record) and value.
type KeyedRecord struct {
	Partition int32
	Key       []byte
	Value     []byte
}

// ProduceKeyed writes recs to topic, each to the partition it names, in
// slice order within each partition, and returns the offset each got
// (offsets[i] is recs[i]'s). It blocks until every record is acknowledged;
// on error some may have been written and offsets is nil. A partition
// outside the topic is an ErrBadArgument.
func (c *Cluster) ProduceKeyed(ctx context.Context, topic string, recs []KeyedRecord) (offsets []int64, err error) {
	parts, err := c.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		if r.Partition < 0 || r.Partition >= parts {
			return nil, fmt.Errorf("%w: record %d: partition %d outside [0, %d)", ErrBadArgument, i, r.Partition, parts)
		}
		krs[i] = &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value}
	}
	cl, err := c.kgoClient()
	if err != nil {
		return nil, err
	}
	// The shared client is idempotent: records to one partition keep the
	// order they were produced in.
	if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("kafkatest: produce to %q: %w", topic, err)
	}
	offsets = make([]int64, len(krs))
	for i, r := range krs {
		offsets[i] = r.Offset
	}
	return offsets, nil
}
