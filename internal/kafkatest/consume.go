package kafkatest

// This file reads a topic back: what a test checks after something was
// produced to it (a dead-letter topic, for instance).

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadN reads the first n records of topic (every partition, from the log
// start) with a new kgo client authenticated as the cluster's own clients,
// and returns them in the order they were fetched (by partition, then
// offset, within each fetch). It returns an error if ctx ends before n
// records arrived, naming how many did. Safe for concurrent use.
func (c *Cluster) ReadN(ctx context.Context, topic string, n int) ([]*kgo.Record, error) {
	if topic == "" || n < 0 {
		return nil, fmt.Errorf("%w: topic %q, n %d", ErrBadArgument, topic, n)
	}
	opts := append(c.clientOpts(),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: read %q: %w", topic, err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("kafkatest: read %q: %d of %d records: %w", topic, len(out), n, err)
		}
		for _, fe := range fs.Errors() {
			return out, fmt.Errorf("kafkatest: read %q partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		out = append(out, fs.Records()...)
	}
	return out, nil
}
