package adaptertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/inorder/inorder/internal/kafkatest"
)

// ClosingConsumer is one consumer of CheckCloseFromAHandler.
type ClosingConsumer struct {
	// Run runs the consumer (its context never ends), handling each
	// message with h, and returns Run's error.
	Run func(h Handler) error
	// Close is the consumer's Close.
	Close func() error
}

// NewClosingConsumer returns a consumer of topic in group on c with the
// adapter's short test timeouts, the Unordered ordering and RevokeTimeout
// revoke (the rebalance timeout raised above it as the adapter requires).
type NewClosingConsumer func(t testing.TB, c *kafkatest.Cluster, group, topic string, revoke time.Duration) ClosingConsumer

// CheckCloseFromAHandler checks that Close called from inside a handler
// returns without waiting for itself. A handler calls Close at offset 50
// of 200 (one partition). That Close must return while the handler is
// still running, so before the Run it stops has drained. RevokeTimeout is
// a minute, far above the hang bounds: a Close that waits for the Run,
// which waits for the handler, fails them. Then Run must return nil, a
// second Close (outside the handler) return, and the final commit cover
// the message whose handler called Close, and only handled messages.
func CheckCloseFromAHandler(t *testing.T, newConsumer NewClosingConsumer) {
	const (
		topic   = "close-in-handler"
		group   = "close-in-handler-group"
		closeAt = 50
		revoke  = time.Minute
		bound   = 20 * time.Second // hang guard, far below revoke
	)
	c, ctx := StartProduced(t, topic, 1, 200, 3*bound)
	cons := newConsumer(t, c, group, topic, revoke)
	rec := NewRecorder()
	closed := make(chan error, 1)
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		errc <- cons.Run(func(_ context.Context, p int32, o int64) error {
			if p == 0 && o == closeAt {
				// Every earlier message first: they are being handled by
				// the other workers (a worker claims a run's messages in
				// order), and a message not yet started when Close revokes
				// is dropped, which would leave the commit below closeAt.
				for deadline := time.Now().Add(bound); !handledBelow(rec, closeAt) && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				once.Do(func() { closed <- cons.Close() })
			}
			rec.Add(p, o, nil)
			return nil
		})
	}()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from a handler = %v", err)
		}
	case <-time.After(bound):
		t.Fatalf("Close called from a handler did not return within %v: it waits for itself", bound)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run = %v after a Close from a handler", err)
		}
	case <-time.After(bound):
		t.Fatalf("Run did not return within %v of a Close from a handler", bound)
	}
	if err := cons.Close(); err != nil {
		t.Fatalf("Close after Run returned = %v", err)
	}
	com, err := c.Committed(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	got := com[0].Offset
	if got <= closeAt {
		t.Fatalf("committed %d: the message at %d, whose handler called Close and returned, is not covered", got, closeAt)
	}
	seen := rec.Seen()
	for o := int64(0); o < got; o++ {
		if seen[PO{P: 0, O: o}] == 0 {
			t.Fatalf("committed %d but offset %d was never handled", got, o)
		}
	}
	t.Logf("committed %d after a Close from the handler of offset %d", got, closeAt)
}

// handledBelow reports whether rec has every offset of partition 0 below n.
func handledBelow(rec *Recorder, n int64) bool {
	for o := range n {
		if rec.Times(0, o) == 0 {
			return false
		}
	}
	return true
}
