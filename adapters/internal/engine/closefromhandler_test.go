package engine_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// hangBound guards a wait that must end: far above what it takes.
const hangBound = 20 * time.Second

// run starts a Run registered with l that, like an adapter's, waits for
// its context to end, then for the handler call it started (the drain),
// sets drained and ends. It returns the Run's done channel.
func run(t *testing.T, l *engine.Lifecycle, drained *atomic.Bool, h engine.Handler[int]) (done chan struct{}) {
	t.Helper()
	ctx, end, err := l.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done = make(chan struct{})
	call := make(chan struct{})
	go func() { // the worker
		defer close(call)
		_ = h(ctx, 1)
	}()
	go func() {
		defer close(done)
		defer end()
		<-ctx.Done()
		<-call
		drained.Store(true)
	}()
	return done
}

// Issue: Close called from inside a handler waited for the Run, which
// waited (its drain) for that handler: it returned only when the revoke
// budget ran out, and the handler's message was left uncommitted. Called
// on the goroutine of a call of a handler wrapped by Handle, Close starts
// the shutdown and returns; the Run then ends.
func TestCloseFromAHandlerDoesNotWaitForItself(t *testing.T) {
	var l engine.Lifecycle
	closed := make(chan struct{})
	var drained atomic.Bool
	done := run(t, &l, &drained, engine.Handle(func(context.Context, int) error {
		l.Close()
		close(closed)
		return nil
	}))
	select {
	case <-closed:
	case <-time.After(hangBound):
		t.Fatal("Close called from a handler waited for the Run that waits for the handler")
	}
	select {
	case <-done:
	case <-time.After(hangBound):
		t.Fatal("the Run did not end after its handler called Close")
	}
	if !drained.Load() {
		t.Fatal("the Run ended before its drain")
	}
	if _, _, err := l.Begin(context.Background()); err != engine.ErrClosed {
		t.Fatalf("Begin after a Close from a handler = %v, want ErrClosed", err)
	}
}

// Close from anywhere else still waits for the Run to end: from another
// goroutine, and from a goroutine a handler started (not inside the call).
func TestCloseOutsideAHandlerWaitsForTheRun(t *testing.T) {
	t.Run("from another goroutine", func(t *testing.T) {
		var l engine.Lifecycle
		started := make(chan struct{})
		var drained atomic.Bool
		done := run(t, &l, &drained, engine.Handle(func(ctx context.Context, _ int) error {
			close(started)
			<-ctx.Done()
			return nil
		}))
		<-started
		l.Close()
		if !drained.Load() {
			t.Fatal("Close returned before the Run drained")
		}
		<-done
	})
	t.Run("from a goroutine a handler started", func(t *testing.T) {
		var l engine.Lifecycle
		closed := make(chan struct{})
		var drained atomic.Bool
		done := run(t, &l, &drained, engine.Handle(func(context.Context, int) error {
			go func() {
				l.Close()
				if !drained.Load() {
					t.Error("Close returned before the Run drained")
				}
				close(closed)
			}()
			return nil
		}))
		select {
		case <-closed:
		case <-time.After(hangBound):
			t.Fatal("Close did not return")
		}
		<-done
	})
}

// Handle's wrapper costs one more call per message and no allocation.
func TestHandleAllocatesNothing(t *testing.T) {
	h := engine.Handle(func(context.Context, int) error { return nil })
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { _ = h(ctx, 1) }); n != 0 {
		t.Fatalf("%v allocations per handler call, want 0", n)
	}
}
