package engine

// This file holds the Run/Close bookkeeping every adapter's Consumer shares.

import (
	"context"
	"sync"
)

// Lifecycle orders a Consumer's Runs against its Closes: one Run at a
// time, and Close final (a Run after it returns ErrClosed, also one whose
// goroutine started just before). The zero value is ready; it must not be
// copied after first use. Safe for concurrent use.
type Lifecycle struct {
	mu      sync.Mutex
	running bool               // a Run is between Begin and its end
	closed  bool               // Close was called
	cancel  context.CancelFunc // of the current Run; nil when not running
	done    chan struct{}      // closed when the current Run has ended
}

// Begin registers a Run. It returns a context derived from ctx that Close
// cancels, and end, which the Run must defer first (so that it runs last:
// Close returns only once every other deferred step is done). It returns
// ErrClosed after Close, ErrRunning while another Run is registered.
func (l *Lifecycle) Begin(ctx context.Context) (context.Context, func(), error) {
	// Registering and checking for an earlier Close under one lock orders
	// every Run against every Close: a Close either sees this Run (and
	// stops it) or happened before it (and the Run does not start).
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		cancel()
		return nil, nil, ErrClosed
	case l.running:
		l.mu.Unlock()
		cancel()
		return nil, nil, ErrRunning
	}
	l.running, l.cancel, l.done = true, cancel, done
	l.mu.Unlock()
	end := func() {
		cancel()
		l.mu.Lock()
		l.running, l.cancel, l.done = false, nil, nil
		l.mu.Unlock()
		close(done)
	}
	return ctx, end, nil
}

// Close makes every later Begin fail with ErrClosed, cancels the running
// Run's context and waits until that Run has ended. It returns at once when
// nothing runs. Any number of times, from any goroutine (not from inside
// the Run: it would wait for itself).
func (l *Lifecycle) Close() {
	l.mu.Lock()
	l.closed = true
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}
