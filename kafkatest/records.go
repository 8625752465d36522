package kafkatest

// This file writes records to a topic and reads them back.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is a record of a topic: what Produce writes, and what Read
// returns.
type Record struct {
	// Partition is the partition the record is written to (Produce) or was
	// read from (Read).
	Partition int32
	// Offset is the record's offset, set by Read; Produce ignores it and
	// returns the offsets the records got.
	Offset int64
	// Key is the record's key; nil for none.
	Key []byte
	// Value is the record's value; nil for a tombstone.
	Value []byte
	// Headers are the record's headers, in order.
	Headers []Header
}

// Header is a record header.
type Header struct {
	// Key is the header's name.
	Key string
	// Value is the header's value.
	Value []byte
}

// HeaderValue returns the value of r's first header named key, and whether
// there is one.
func (r Record) HeaderValue(key string) ([]byte, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// Produce writes recs to topic, each to the partition it names, in order
// within each partition, and returns the offset each got (offsets[i] is
// recs[i]'s). It blocks until the broker acknowledged every record; on
// error some may have been written and offsets is nil. A partition the
// topic does not have is an error wrapping ErrBadArgument; a topic that
// does not exist is an error too.
func (c *Cluster) Produce(ctx context.Context, topic string, recs ...Record) (offsets []int64, err error) {
	n, err := c.in.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		if r.Partition < 0 || r.Partition >= n {
			return nil, fmt.Errorf("%w: record %d: partition %d, topic %q has %d", ErrBadArgument, i, r.Partition, topic, n)
		}
		kr := &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		krs[i] = kr
	}
	cl, err := c.producer()
	if err != nil {
		return nil, err
	}
	res := cl.ProduceSync(ctx, krs...)
	if err := res.FirstErr(); err != nil {
		return nil, fmt.Errorf("kafkatest: produce to %q: %w", topic, err)
	}
	// res is in the order the produce requests completed, not recs'
	// order: read each record's own offset.
	offsets = make([]int64, len(krs))
	for i, r := range krs {
		offsets[i] = r.Offset
	}
	return offsets, nil
}

// producer returns Produce's client.
func (c *Cluster) producer() (*kgo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.client == nil {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(c.Addrs()...),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerLinger(0),
		)
		if err != nil {
			return nil, fmt.Errorf("kafkatest: client: %w", err)
		}
		c.client = cl
	}
	return c.client, nil
}

// Read reads the first n records of topic (every partition, from the log
// start; committed records only) and returns them sorted by partition,
// then offset. It returns an error if ctx ends before n records arrived,
// naming how many did. It reads as no group: nothing is committed.
func (c *Cluster) Read(ctx context.Context, topic string, n int) ([]Record, error) {
	if topic == "" || n < 0 {
		return nil, fmt.Errorf("%w: topic %q, n %d", ErrBadArgument, topic, n)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.Addrs()...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: read %q: %w", topic, err)
	}
	defer cl.Close()
	var out []Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("kafkatest: read %q: %d of %d records: %w", topic, len(out), n, err)
		}
		for _, fe := range fs.Errors() {
			return nil, fmt.Errorf("kafkatest: read %q partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		for _, kr := range fs.Records() {
			r := Record{Partition: kr.Partition, Offset: kr.Offset, Key: kr.Key, Value: kr.Value}
			for _, h := range kr.Headers {
				r.Headers = append(r.Headers, Header{h.Key, h.Value})
			}
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Record) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return out[:n], nil
}
