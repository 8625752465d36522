package engine

// This file holds the retry settings, Permanent, and the bookkeeping of a
// message between its first failure and its ack: while it waits for its
// next attempt it sits in the scheduler's timer heap, not in a worker, and
// holds its key (ByKey) or partition (ByPartition).

import (
	"errors"
	"math/rand/v2"
	"time"
)

// Retry says how often a failing message is handled again before the dead
// letter (WithDeadLetter, WithDeadLetterFunc) or, without one, the error
// policy applies; see WithRetry.
type Retry struct {
	// MaxAttempts counts every handler call of a message, the first
	// included: 1 (default) never retries, and "3 retries" is
	// MaxAttempts: 4.
	MaxAttempts int
	// Backoff is the wait before the second attempt (default 100ms); each
	// further wait doubles, up to MaxBackoff. Each wait is jittered: between
	// half of it and all of it. A failing dead letter is retried with the
	// same waits.
	Backoff time.Duration
	// MaxBackoff caps the wait (default 10s); it must not be below Backoff.
	MaxBackoff time.Duration
}

// Retry defaults.
const (
	DefaultMaxAttempts = 1
	DefaultBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
)

// wait returns the n-th wait (n >= 1), jittered.
func (r Retry) wait(n int) time.Duration {
	d := r.Backoff
	for i := 1; i < n && d < r.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.MaxBackoff)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent wraps a handler error so that the message is not retried: the
// dead letter or the error policy applies at once. errors.Is and errors.As
// see through it. Permanent(nil) is nil. Any goroutine.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

func isPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// retry is a failed message's bookkeeping, from its first failure until it
// is acked or dropped. The worker that ran the message writes it; the
// scheduler owns it while the message waits.
type retry[M any] struct {
	attempts int   // handler calls made
	dlCalls  int   // DeadLetter calls made
	err      error // the handler's last error
	dead     bool  // the handler is done with: DeadLetter is what is tried next

	pending bool          // set by the worker: hold the message for wait
	wait    time.Duration //
	due     int64         // while waiting, on the scheduler's clock
	t       task[M]       // while waiting: the message and what it holds
	hidx    int           // index in the timer heap
	pidx    int           // index in the partition's waiting list
}
