package kafkago_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// A partition's first fetch asks for 64 KiB, and each fetch after it for
// twice as much up to FetchMaxBytes: the first response holds a few
// records, later ones many. Read from the fetch offsets: each fetch starts
// where the previous response ended.
func TestFirstFetchIsSmallAndTheNextOnesGrow(t *testing.T) {
	const (
		n    = 400
		size = 4 << 10 // 16 records per 64 KiB
	)
	c := kafkatest.Start(t, kafkatest.WithTopic("f", 1))
	ctx := adaptertest.Timeout(t, time.Minute)
	rng := rand.New(rand.NewPCG(1, 2))
	for range n { // one record batch per record: the broker can stop at any record
		value := make([]byte, size) // random: the producer's compression leaves it whole
		for i := range value {
			value[i] = byte(rng.Uint32())
		}
		if _, err := c.ProduceKeyed(ctx, "f", []kafkatest.KeyedRecord{{Partition: 0, Value: value}}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var offs []int64
	hook := kafkago.WithFetchHook(func(_ kafkago.TopicPartition, offset int64, _ *fetchAPI.ResponsePartition) {
		mu.Lock()
		offs = append(offs, offset)
		mu.Unlock()
	})
	cons, err := kafkago.NewConsumer(c.Addrs(), "g", []string{"f"}, append(fastOpts(testLogger(t)), hook)...)
	if err != nil {
		t.Fatal(err)
	}
	var handled sync.WaitGroup
	handled.Add(n)
	stop := runConsumer(t, cons, func(context.Context, kafka.Message) error { handled.Done(); return nil })
	handled.Wait()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(offs) < 3 || offs[0] != 0 {
		t.Fatalf("fetch offsets %v, want at least 3 fetches from 0", offs)
	}
	// The broker adds records while they fit, and always at least one.
	if first := offs[1] - offs[0]; first < 1 || first > 64<<10/size {
		t.Errorf("first response held %d records of %d bytes, want 1..%d (64 KiB); fetch offsets %v", first, size, 64<<10/size, offs)
	}
	if largest := maxStep(offs); largest <= 2*64<<10/size {
		t.Errorf("no later response held more than %d records (fetch offsets %v): the fetch size did not grow", largest, offs)
	}
}

func maxStep(offs []int64) int64 {
	var m int64
	for i := 1; i < len(offs); i++ {
		m = max(m, offs[i]-offs[i-1])
	}
	return m
}
