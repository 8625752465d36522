package engine

// This file holds the Run/Close bookkeeping every adapter's Consumer shares.

import (
	"context"
	"reflect"
	"runtime"
	"strings"
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
// nothing runs. Any number of times, from any goroutine. Called from inside
// a handler call (on the goroutine of a handler wrapped by Handle), it
// starts the shutdown and returns without waiting: the Run's drain waits
// for that very call, so waiting would wait for itself until the revoke
// budget ran out. That holds for a handler of any Consumer: a handler that
// closes another Consumer does not wait for it either. A goroutine the
// handler started is not inside the call: its Close waits.
func (l *Lifecycle) Close() {
	l.mu.Lock()
	l.closed = true
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	if inHandlerCall() {
		return
	}
	<-done
}

// Handle returns h wrapped so that Close can tell when it is called from
// inside one of h's calls: the wrapper's frame (inHandler) on the calling
// goroutine's stack. The engine needs no wrapper (its own call frames mark
// its handler calls, see handlerFrame); Handle is for a Lifecycle whose
// handler the engine does not call.
func Handle[M any](h Handler[M]) Handler[M] {
	return func(ctx context.Context, msg M) error { return inHandler(ctx, msg, h) }
}

// inHandler calls h. Its frame marks a goroutine that is inside a handler
// call: it must not be inlined.
//
//go:noinline
func inHandler[M any](ctx context.Context, msg M, h Handler[M]) error {
	return h(ctx, msg)
}

// pkgPrefix is this package's path and a dot, the start of the names of
// its functions' frames.
var pkgPrefix = strings.TrimSuffix(
	runtime.FuncForPC(reflect.ValueOf(frameAnchor).Pointer()).Name(), "frameAnchor")

// frameAnchor names this package in pkgPrefix.
func frameAnchor() {}

// handlerFrame reports whether fn, a frame's function name, is a handler
// call: inHandler, or the engine's Engine.call or Engine.callBatch.
func handlerFrame(fn string) bool {
	rest, ok := strings.CutPrefix(fn, pkgPrefix)
	switch {
	case !ok:
		return false
	case strings.HasPrefix(rest, "inHandler["):
		return true
	default:
		return strings.HasPrefix(rest, "(*Engine[") &&
			(strings.HasSuffix(rest, ").call") || strings.HasSuffix(rest, ").callBatch"))
	}
}

// inHandlerCall reports whether the calling goroutine is inside a handler
// call (an inHandler frame is on its stack). It walks the whole stack: for
// Close, not for a hot path.
func inHandlerCall() bool {
	pcs := make([]uintptr, 64)
	for {
		n := runtime.Callers(2, pcs)
		if n < len(pcs) {
			pcs = pcs[:n]
			break
		}
		pcs = make([]uintptr, 2*len(pcs))
	}
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if handlerFrame(f.Function) {
			return true
		}
		if !more {
			return false
		}
	}
}
