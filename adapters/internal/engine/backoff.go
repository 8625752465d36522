package engine

// This file holds the capped exponential wait the adapters use between
// retries of a failed request (fetch, offset lookup, group join, commit),
// and the logging of such a retried read's failures.

import (
	"context"
	"log/slog"
	"time"
)

// Backoff is a capped exponential wait: first, then doubling up to limit.
// Not safe for concurrent use: one per retry loop.
type Backoff struct {
	first, limit, cur time.Duration
	// OnWait, if set, sees every wait Wait is about to do (tests).
	OnWait func(time.Duration)
}

// NewBackoff returns a Backoff starting at first and doubling up to
// max(first, limit).
func NewBackoff(first, limit time.Duration) *Backoff {
	return &Backoff{first: first, limit: max(first, limit), cur: first}
}

// NewRetryBackoff is the adapters' request backoff: first (the
// RetryBackoff option), doubling up to max(first, DefaultMaxRetryBackoff).
func NewRetryBackoff(first time.Duration) *Backoff {
	return NewBackoff(first, DefaultMaxRetryBackoff)
}

// Reset starts again at the first wait.
func (b *Backoff) Reset() { b.cur = b.first }

// Next returns the wait to do now and advances.
func (b *Backoff) Next() time.Duration {
	d := b.cur
	b.cur = min(2*b.cur, b.limit)
	return d
}

// Wait waits Next(), or until ctx ends; it reports whether it waited the
// whole time.
func (b *Backoff) Wait(ctx context.Context) bool {
	d := b.Next()
	if b.OnWait != nil {
		b.OnWait(d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// RetryBackoffAt returns the wait before attempt tries+1 of the adapters'
// request backoff (tries >= 1): first doubled tries-1 times, at most
// max(first, DefaultMaxRetryBackoff). For clients that ask for a function
// (kgo's RetryBackoffFn).
func RetryBackoffAt(first time.Duration, tries int) time.Duration {
	b := NewRetryBackoff(first)
	d := b.Next()
	for i := 1; i < tries && d < b.limit; i++ {
		d = b.Next()
	}
	return d
}

// Failures logs the failures of a read retried with backoff once per
// episode: the first at Warn, the retries at Debug, the success after
// them at Info, each with the attempts and how long it failed. The zero
// value is ready; one per retried read.
type Failures struct {
	n     int
	since time.Time
}

// Failed logs err, the n-th failure of the episode.
func (f *Failures) Failed(ctx context.Context, log *slog.Logger, msg string, err error, args ...any) {
	level := slog.LevelDebug
	if f.n++; f.n == 1 {
		level, f.since = slog.LevelWarn, time.Now()
	}
	log.Log(ctx, level, msg, append(args, "attempt", f.n, "error", err)...)
}

// Recovered logs the read's success if it failed before.
func (f *Failures) Recovered(log *slog.Logger, msg string, args ...any) {
	if f.n > 0 {
		log.Info(msg, append(args, "failed_reads", f.n, "after", time.Since(f.since).Round(time.Millisecond))...)
	}
}
