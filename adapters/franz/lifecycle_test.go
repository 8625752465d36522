package franz_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Run returns even if a handler ignores its context and never returns: the
// revoke's drain and the workers' stop are both bounded by RevokeTimeout;
// the handler is abandoned, and the commit stops at its record.
func TestRunReturnsWhenAHandlerIgnoresCtx(t *testing.T) {
	c, ctx := adaptertest.StartProduced(t, "stuck", 1, 10, 60*time.Second)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) }) // frees the abandoned handler at the end
	started := make(chan struct{})
	var once sync.Once
	cons, err := franz.NewConsumer(c.Addrs(), "stuck-group", []string{"stuck"},
		append(fastOpts(slogDiscard()), franz.WithRevokeTimeout(500*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- cons.Run(rctx, func(_ context.Context, r *kgo.Record) error {
			if r.Offset == 3 {
				once.Do(func() { close(started) })
				<-block
			}
			return nil
		})
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("handler never called")
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(30 * time.Second): // hang guard only
		t.Fatal("Run did not return with a handler that ignores ctx")
	}
	com, err := c.Committed(ctx, "stuck-group", "stuck")
	if err != nil {
		t.Fatal(err)
	}
	if got := com[0].Offset; got != 3 {
		t.Errorf("committed %d, want 3: the records before the abandoned one, not it", got)
	}
}
