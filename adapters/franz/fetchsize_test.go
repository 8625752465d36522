package franz_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// fetchSizes records the size of every fetch response read that holds
// records (a kgo hook).
type fetchSizes struct {
	mu    sync.Mutex
	sizes []int
}

func (f *fetchSizes) OnBrokerRead(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, err error) {
	if key != int16(kmsg.Fetch) || err != nil || n < 1<<10 { // an empty response is a few dozen bytes
		return
	}
	f.mu.Lock()
	f.sizes = append(f.sizes, n)
	f.mu.Unlock()
}

// Issue 12 (performance): a Run's first fetch asks for 64 KiB
// (engine.FirstFetchBytes), so the first records are handed out after a
// small response is decoded, and the later fetches grow: with 4 KiB
// records in batches of one, the first response holds at most 64 KiB of
// them (the broker adds batches while they fit) and a later one more than
// twice that.
func TestFirstFetchIsSmallAndTheNextOnesGrow(t *testing.T) {
	const (
		n    = 400
		size = 4 << 10
	)
	c := kafkatest.Start(t, kafkatest.WithTopic("f", 1))
	ctx := adaptertest.Timeout(t, time.Minute)
	rng := rand.New(rand.NewPCG(1, 2))
	for range n { // one batch per record: the broker can stop at any record
		value := make([]byte, size) // random: compression leaves it whole
		for i := range value {
			value[i] = byte(rng.Uint32())
		}
		if _, err := c.ProduceKeyed(ctx, "f", []kafkatest.KeyedRecord{{Partition: 0, Value: value}}); err != nil {
			t.Fatal(err)
		}
	}
	var sizes fetchSizes
	cons, err := franz.NewConsumer(c.Addrs(), "g", []string{"f"},
		append(stableOpts(testLogger(t)), franz.WithClientOptions(kgo.WithHooks(&sizes)))...)
	if err != nil {
		t.Fatal(err)
	}
	var handled sync.WaitGroup
	handled.Add(n)
	stop := runConsumer(t, cons, func(context.Context, *kgo.Record) error { handled.Done(); return nil })
	handled.Wait()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	sizes.mu.Lock()
	defer sizes.mu.Unlock()
	if len(sizes.sizes) < 3 {
		t.Fatalf("%d fetch responses with records (%v), want at least 3", len(sizes.sizes), sizes.sizes)
	}
	const overhead = 1 << 10 // response, topic and partition headers
	if first := sizes.sizes[0]; first > 64<<10+overhead {
		t.Errorf("first fetch response %d bytes, want at most 64 KiB of records (responses %v)", first, sizes.sizes)
	}
	if largest := slices.Max(sizes.sizes); largest <= 2*(64<<10+overhead) {
		t.Errorf("largest fetch response %d bytes (responses %v): the fetch size did not grow", largest, sizes.sizes)
	}
}
