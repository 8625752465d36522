package engine_test

// Retries, Permanent and the dead letter through the whole engine.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
)

var errBoom = errors.New("boom")

// calls counts handler calls per offset.
type calls struct {
	mu sync.Mutex
	n  map[int64]int
	// order of the calls, as "key/offset"
	order []string
}

func (c *calls) add(m kmsg) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[int64]int{}
	}
	c.n[m.off]++
	c.order = append(c.order, fmt.Sprintf("%s/%d", m.key, m.off))
	return c.n[m.off]
}

func (c *calls) of(off int64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[off]
}

func retryCfg(attempts int) engine.Config {
	c := cfg()
	c.Retry = engine.Retry{MaxAttempts: attempts, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	return c
}

// startOne starts an engine with h on one partition and delivers n messages.
func startOne(t *testing.T, c engine.Config, n int64, h engine.Handler[kmsg]) (*engine.Engine[kmsg], *engine.Session[kmsg], *engine.Part, *fakeBroker) {
	t.Helper()
	e := engine.New(c, h, msgKey)
	e.Start(context.Background())
	t.Cleanup(e.Stop)
	fb := &fakeBroker{}
	s := e.NewSession(fb.commit)
	t.Cleanup(func() { s.Close(context.Background()) })
	p, _ := s.Assign(tp, 0, "", -1)
	for o := range n {
		if err := s.Deliver(context.Background(), p, o, kmsg{0, o, []byte(fmt.Sprint(o % 3))}); err != nil {
			t.Fatal(err)
		}
	}
	return e, s, p, fb
}

func TestRetrySucceedsOnALaterAttempt(t *testing.T) {
	var c calls
	e, _, p, _ := startOne(t, retryCfg(3), 10, func(_ context.Context, m kmsg) error {
		if c.add(m) < 3 && m.off == 4 {
			return errBoom
		}
		return nil
	})
	waitUntil(t, func() bool { return p.Watermark().Committable() == 10 })
	if n := c.of(4); n != 3 {
		t.Fatalf("offset 4 handled %d times, want 3", n)
	}
	st := e.Stats()[0]
	if st.Retries != 2 || st.Errors != 2 {
		t.Fatalf("stats %+v, want 2 retries, 2 errors", st)
	}
}

func TestRetryGivesUpAfterMaxAttemptsThenErrorPolicy(t *testing.T) {
	t.Run("policy=LogAndAck", func(t *testing.T) {
		var c calls
		e, _, p, _ := startOne(t, retryCfg(3), 5, func(_ context.Context, m kmsg) error {
			c.add(m)
			if m.off == 2 {
				return errBoom
			}
			return nil
		})
		waitUntil(t, func() bool { return p.Watermark().Committable() == 5 })
		if n := c.of(2); n != 3 {
			t.Fatalf("offset 2 handled %d times, want 3 (MaxAttempts)", n)
		}
		if st := e.Stats()[0]; st.Retries != 2 || st.Errors != 3 {
			t.Fatalf("stats %+v, want 2 retries, 3 errors", st)
		}
	})
	t.Run("policy=Stop", func(t *testing.T) {
		c := retryCfg(2)
		c.ErrorPolicy = engine.Stop
		var cl calls
		e, _, _, _ := startOne(t, c, 5, func(_ context.Context, m kmsg) error {
			cl.add(m)
			if m.off == 2 {
				return errBoom
			}
			return nil
		})
		select {
		case <-e.Fatal():
		case <-time.After(10 * time.Second): // hang guard
			t.Fatal("engine did not stop after the last attempt")
		}
		if err := e.Err(); !errors.Is(err, errBoom) || !errors.Is(err, engine.ErrHandler) {
			t.Fatalf("Err() = %v, want ErrHandler wrapping the handler's error", err)
		}
		if n := cl.of(2); n != 2 {
			t.Fatalf("offset 2 handled %d times, want 2", n)
		}
	})
}

func TestPermanentErrorIsNotRetried(t *testing.T) {
	if engine.Permanent(nil) != nil {
		t.Fatal("Permanent(nil) != nil")
	}
	if !errors.Is(engine.Permanent(errBoom), errBoom) {
		t.Fatal("Permanent hides the error from errors.Is")
	}
	var c calls
	e, _, p, _ := startOne(t, retryCfg(5), 3, func(_ context.Context, m kmsg) error {
		c.add(m)
		if m.off == 1 {
			return fmt.Errorf("wrapped: %w", engine.Permanent(errBoom))
		}
		return nil
	})
	waitUntil(t, func() bool { return p.Watermark().Committable() == 3 })
	if n := c.of(1); n != 1 {
		t.Fatalf("offset 1 handled %d times, want 1 (permanent)", n)
	}
	if st := e.Stats()[0]; st.Retries != 0 {
		t.Fatalf("stats %+v, want no retry", st)
	}
}

// A message waiting for its retry holds its key but no worker: with one
// worker, the other key's messages are all handled meanwhile, and the next
// message of the waiting key is not.
func TestRetryWaitHoldsTheKeyNotAWorker(t *testing.T) {
	c := cfg()
	c.Concurrency = 1
	c.Ordering = engine.ByKey
	c.Retry = engine.Retry{MaxAttempts: 2, Backoff: time.Hour, MaxBackoff: time.Hour}
	var cl calls
	e := engine.New(c, func(_ context.Context, m kmsg) error {
		if cl.add(m) == 1 && m.off == 0 {
			return errBoom
		}
		return nil
	}, msgKey)
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	defer s.Close(context.Background())
	p, _ := s.Assign(tp, 0, "", -1)
	defer s.Lose(tp) // the retry is an hour away: drop it
	keys := []string{"a", "a"}
	for range 20 {
		keys = append(keys, "b")
	}
	for o, k := range keys {
		if err := s.Deliver(context.Background(), p, int64(o), kmsg{0, int64(o), []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return e.Handled() == 21 }) // a/0 once, every b
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, o := range cl.order {
		if o == "a/1" {
			t.Fatalf("a/1 ran while a/0 waits for its retry: %v", cl.order)
		}
	}
	if st := e.Stats()[0]; st.Retries != 1 || st.CommitPoint != 0 {
		t.Fatalf("stats %+v, want one retry and the commit point held at 0", st)
	}
}

func TestDeadLetterAfterLastAttemptAckedOnlyWhenItSucceeds(t *testing.T) {
	for _, policy := range []engine.ErrorPolicy{engine.LogAndAck, engine.Stop} {
		t.Run(fmt.Sprintf("policy=%v", policy), func(t *testing.T) {
			c := retryCfg(2)
			c.ErrorPolicy = policy
			var mu sync.Mutex
			var dlCalls int
			var bad []string
			var p *engine.Part
			ready := make(chan struct{})
			c.DeadLetter = func(ctx context.Context, msg any, err error, _ int) error {
				<-ready
				mu.Lock()
				defer mu.Unlock()
				dlCalls++
				m, ok := msg.(kmsg)
				if !ok || m.off != 1 || !errors.Is(err, errBoom) {
					bad = append(bad, fmt.Sprintf("dead letter of %#v with %v", msg, err))
				}
				if cp := p.Watermark().Committable(); cp != 1 {
					bad = append(bad, fmt.Sprintf("commit point %d while the dead letter runs, want 1", cp))
				}
				switch dlCalls {
				case 1:
					return errors.New("producer down")
				case 2:
					panic("producer panicked")
				}
				return nil
			}
			var cl calls
			e, _, pp, _ := startOne(t, c, 4, func(_ context.Context, m kmsg) error {
				cl.add(m)
				if m.off == 1 {
					return errBoom
				}
				return nil
			})
			p = pp
			close(ready)
			waitUntil(t, func() bool { return p.Watermark().Committable() == 4 })
			mu.Lock()
			defer mu.Unlock()
			if len(bad) > 0 {
				t.Fatal(bad[0])
			}
			if dlCalls != 3 || cl.of(1) != 2 {
				t.Fatalf("dead letter called %d times, handler %d times; want 3 and 2", dlCalls, cl.of(1))
			}
			st := e.Stats()[0]
			if st.DeadLettered != 1 || st.DeadLetterFailures != 2 || st.Retries != 1 {
				t.Fatalf("stats %+v, want 1 dead-lettered, 2 dead letter failures, 1 retry", st)
			}
			if e.Err() != nil {
				t.Fatalf("engine stopped (%v) although the dead letter took the message", e.Err())
			}
		})
	}
}

func TestRetryConfigIsValidated(t *testing.T) {
	for _, tc := range []struct {
		field string
		r     engine.Retry
	}{
		{"Retry.MaxAttempts", engine.Retry{MaxAttempts: 0, Backoff: time.Second, MaxBackoff: time.Second}},
		{"Retry.Backoff", engine.Retry{MaxAttempts: 2, Backoff: 0, MaxBackoff: time.Second}},
		{"Retry.MaxBackoff", engine.Retry{MaxAttempts: 2, Backoff: time.Second, MaxBackoff: time.Millisecond}},
	} {
		c := cfg()
		c.Retry = tc.r
		if err := c.Validate(); !errors.Is(err, engine.ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("Validate(%+v) = %v, want ErrConfig naming %s", tc.r, err, tc.field)
		}
	}
}

// The n-th wait is Backoff doubled n-1 times, capped at MaxBackoff, then
// jittered to between half of it and all of it.
func TestRetryWaitsGrowExponentiallyWithJitter(t *testing.T) {
	r := engine.Retry{MaxAttempts: 10, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	for n := 1; n <= 8; n++ {
		d := min(r.Backoff<<(n-1), r.MaxBackoff)
		lo, hi := d, time.Duration(0)
		for range 200 {
			w := engine.RetryWait(r, n)
			lo, hi = min(lo, w), max(hi, w)
		}
		if lo < d/2 || hi > d || hi-lo < d/10 {
			t.Fatalf("wait %d in [%v, %v], want within [%v, %v] and spread", n, lo, hi, d/2, d)
		}
	}
}

// Unordered runs read their messages in the queue's blocks (reserved, not
// copied under the scheduler's lock): with fetch-sized offers, handlers
// slow enough that free workers steal from runs, and failures retried
// (a retry goes in front of the queue, beside slots a run reads), every
// message succeeds exactly once and the commit point reaches the end. Run
// it with -race: a slot reused while a run reads it is a data race.
func TestUnorderedRunsUnderStealsAndRetries(t *testing.T) {
	const parts, perPart, batch = 3, 3000, 200
	c := retryCfg(4)
	c.Concurrency = 6
	var mu sync.Mutex
	attempts := map[[2]int64]int{}
	succeeded := map[[2]int64]int{}
	e := engine.New(c, func(_ context.Context, m kmsg) error {
		id := [2]int64{int64(m.part), m.off}
		mu.Lock()
		attempts[id]++
		a := attempts[id]
		mu.Unlock()
		switch {
		case m.off%97 == 5 && a < 3: // fails twice, then succeeds
			return errBoom
		case m.off%211 == 7:
			time.Sleep(2 * time.Millisecond) // the rest of its run is stolen
		}
		mu.Lock()
		succeeded[id]++
		mu.Unlock()
		return nil
	}, msgKey)
	s, ps, stop := benchSession(e, parts)
	defer stop()
	offs, msgs := make([]int64, batch), make([]kmsg, batch)
	for o := 0; o < perPart; o += batch {
		for pi, p := range ps {
			for i := range batch {
				offs[i], msgs[i] = int64(o+i), kmsg{int32(pi), int64(o + i), nil}
			}
			if _, err := s.Offer(p, offs, msgs, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range ps {
		waitUntil(t, func() bool { return p.Watermark().Committable() == perPart })
	}
	mu.Lock()
	defer mu.Unlock()
	if len(succeeded) != parts*perPart {
		t.Fatalf("%d messages succeeded, want %d", len(succeeded), parts*perPart)
	}
	for id, n := range succeeded {
		if n != 1 {
			t.Fatalf("message %v succeeded %d times, want once", id, n)
		}
		if want := 1 + 2*btoi(id[1]%97 == 5); attempts[id] != want {
			t.Fatalf("message %v handled %d times, want %d", id, attempts[id], want)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
