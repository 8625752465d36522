package kafkatest_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/internal/kafkatest"
)

// ProduceKeyed writes each record to its partition in slice order, with its
// key (nil stays nil), and returns the offsets they got.
func TestProduceKeyedKeepsPartitionOrderAndKeys(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("k", 2))
	ctx := ctxFor(t, 30*time.Second)
	recs := []kafkatest.KeyedRecord{
		{Partition: 1, Key: []byte("a"), Value: []byte("0")},
		{Partition: 0, Key: []byte("b"), Value: []byte("1")},
		{Partition: 1, Value: []byte("2")},
		{Partition: 1, Key: []byte("a"), Value: []byte("3")},
		{Partition: 0, Key: []byte{}, Value: []byte("4")},
	}
	offs, err := c.ProduceKeyed(ctx, "k", recs)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{0, 0, 1, 2, 1}; !slices.Equal(offs, want) {
		t.Fatalf("offsets %v, want %v", offs, want)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumeTopics("k"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]*kgo.Record{}
	for len(got) < len(recs) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = r })
	}
	for i, r := range recs {
		g := got[string(r.Value)]
		if g.Partition != r.Partition || g.Offset != offs[i] || !slices.Equal(g.Key, r.Key) || (r.Key != nil && g.Key == nil) {
			t.Errorf("record %d read back at %d/%d key %q, want %d/%d key %q", i, g.Partition, g.Offset, g.Key, r.Partition, offs[i], r.Key)
		}
	}
	if _, err := c.ProduceKeyed(ctx, "k", []kafkatest.KeyedRecord{{Partition: 2}}); !errors.Is(err, kafkatest.ErrBadArgument) {
		t.Errorf("partition outside the topic: %v", err)
	}
}
