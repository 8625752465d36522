package adaptertest

// The batch handler's shared check (RunBatch): a keyed topic consumed ByKey
// with a batch handler, every message handled once, the messages of a key
// in offset order within and across batches, no key in two calls at once,
// batches of more than one message, commits at the log end.

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/inorder/inorder/internal/kafkatest"
)

// BatchMsg is a message of a batch as the check needs it.
type BatchMsg struct {
	P   int32
	O   int64
	Key []byte
}

// StartBatchMember runs one consumer of group on topic with RunBatch,
// ordering o, batches of up to maxSize messages, whose handler passes each
// batch to h (converted) and returns h's error, until stop, which returns
// RunBatch's error.
type StartBatchMember func(tb testing.TB, c *kafkatest.Cluster, group, topic string, o Ordering, maxSize int,
	h func(msgs []BatchMsg) error) (stop func() error)

// CheckRunBatch consumes a keyed topic ByKey with a batch handler and checks
// that every message is handled once, that the messages of a key come in
// offset order (within a batch and across batches) and never in two calls
// at once, that some batches hold several messages (of one key too), and
// that the commits reach the log end.
func CheckRunBatch(t *testing.T, start StartBatchMember) {
	const topic, parts, n, keys = "batch", 4, 3000, 40
	c := kafkatest.Start(t, kafkatest.WithTopic(topic, parts))
	ctx := Timeout(t, 60*time.Second)
	kt := ProduceKeyedTopic(ctx, t, c, topic, parts, n, keys)
	group := NextGroup("batch")
	var mu sync.Mutex
	var bad []string
	seen := map[PO]int{}
	last := map[string]int64{}
	busy := map[string]bool{}
	calls, multiKey := 0, 0
	stop := start(t, c, group, topic, Ordering{Mode: ByKey}, 50, func(msgs []BatchMsg) error {
		mu.Lock()
		calls++
		inBatch := map[string]int{}
		for _, m := range msgs {
			seen[PO{m.P, m.O}]++
			if len(m.Key) == 0 {
				continue // keyless: not ordered
			}
			k := fmt.Sprintf("%d/%s", m.P, m.Key)
			if inBatch[k] == 0 && busy[k] {
				bad = append(bad, fmt.Sprintf("%d/%d: key %q in two calls at once", m.P, m.O, k))
			}
			if l, ok := last[k]; ok && l >= m.O {
				bad = append(bad, fmt.Sprintf("%d/%d: key %q after its offset %d", m.P, m.O, k, l))
			}
			last[k] = m.O
			if inBatch[k]++; inBatch[k] == 2 {
				multiKey++
			}
			busy[k] = true
		}
		mu.Unlock()
		time.Sleep(time.Millisecond) // a sink's round trip: the queue fills behind it
		mu.Lock()
		for k := range inBatch {
			busy[k] = false
		}
		mu.Unlock()
		return nil
	})
	WaitFor(ctx, t, "every message handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	})
	if err := stop(); err != nil {
		t.Fatalf("RunBatch: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("%d order violations, first: %s", len(bad), bad[0])
	}
	for po, k := range seen {
		if k != 1 {
			t.Fatalf("message %v handled %d times", po, k)
		}
		if _, ok := kt.Keys[po]; !ok {
			t.Fatalf("message %v was not produced", po)
		}
	}
	t.Logf("%d calls, %.1f messages per call, %d batches with several messages of a key",
		calls, float64(n)/float64(calls), multiKey)
	if calls >= n/2 || multiKey == 0 {
		t.Fatalf("%d calls for %d messages, %d batches with several messages of a key: not batched",
			calls, n, multiKey)
	}
	if ok, why := CommittedAtEnd(ctx, c, group, topic); !ok {
		t.Fatalf("commits after RunBatch returned: %s", why)
	}
}
