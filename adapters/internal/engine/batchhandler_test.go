package engine_test

// The batch handler (NewBatch) through the whole engine: key order across
// batches and across the retries of a BatchError, the commit point never
// past a message of a batch that did not succeed, batch sizes with ByKey,
// the tail of a BatchError handed out again without an attempt, and bad
// input.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// batchCheck is the model of a ByKey consumer with a batch handler: the
// offsets of each key of each partition, which are done, which key is in a
// call; it records the violations it sees.
type batchCheck struct {
	mu      sync.Mutex
	keyOffs map[string][]int64 // per "part/key": its offsets, ascending
	next    map[string]int     // per "part/key": index in keyOffs of its first message not done
	busy    map[string]bool    // a call holds the key
	done    map[[2]int64]int   // successes per message
	fails   map[[2]int64]int   // failures per message
	calls   int
	msgs    int
	bad     []string
}

func laneKey(m kmsg) string { return fmt.Sprintf("%d/%s", m.part, m.key) }

// notDoneBelow returns the lowest offset of partition part not done, or
// limit.
func (c *batchCheck) lowestNotDone(part int32, limit int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	low := limit
	for k, offs := range c.keyOffs {
		if !strings.HasPrefix(k, fmt.Sprint(part, "/")) {
			continue
		}
		if i := c.next[k]; i < len(offs) {
			low = min(low, offs[i])
		}
	}
	return low
}

// start checks a batch at the start of its call: per key, its messages in
// the batch are the key's next ones not done, in offset order, and no other
// call holds the key.
func (c *batchCheck) start(msgs []kmsg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.msgs += len(msgs)
	seen := map[string]int{}
	for _, m := range msgs {
		k := laneKey(m)
		if _, ok := seen[k]; !ok && c.busy[k] {
			c.bad = append(c.bad, fmt.Sprintf("%d/%d: key %q in two calls at once", m.part, m.off, k))
		}
		i := c.next[k] + seen[k]
		if offs := c.keyOffs[k]; i >= len(offs) || offs[i] != m.off {
			c.bad = append(c.bad, fmt.Sprintf("%d/%d: key %q out of order (want its message #%d)", m.part, m.off, k, i))
		}
		seen[k]++
		c.busy[k] = true
	}
}

// end records the outcome: msgs[:n] done, msgs[n] (if any) failed (all of
// them if whole), the keys free again.
func (c *batchCheck) end(msgs []kmsg, n int, whole bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range msgs {
		id := [2]int64{int64(m.part), m.off}
		k := laneKey(m)
		c.busy[k] = false
		switch {
		case whole:
			c.fails[id]++
		case i < n:
			c.done[id]++
			c.next[k]++
		case i == n:
			c.fails[id]++
		}
	}
}

// ByKey, 4 partitions, 100 keys, random BatchErrors and whole-batch
// failures with retries: per key, every call starts with the key's next
// messages not done, in offset order, and no two calls hold a key at once;
// every message is done once; and the commit point, sampled all along,
// never passes a message not done.
func TestBatchHandlerKeepsKeyOrderAcrossBatchesAndBatchErrors(t *testing.T) {
	const parts, perPart, keys = 4, 1500, 100
	c := cfg()
	c.Concurrency = 8
	c.Window = 256
	c.Ordering = engine.ByKey
	c.BatchSize, c.BatchWait = 40, time.Millisecond
	c.Retry = engine.Retry{MaxAttempts: 100, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	chk := &batchCheck{keyOffs: map[string][]int64{}, next: map[string]int{}, busy: map[string]bool{},
		done: map[[2]int64]int{}, fails: map[[2]int64]int{}}
	all := make([][]kmsg, parts)
	for pi := range int32(parts) {
		rng := rand.New(rand.NewPCG(uint64(pi), 7))
		for o := range int64(perPart) {
			m := kmsg{pi, o, []byte(fmt.Sprint("k", rng.IntN(keys)))}
			all[pi] = append(all[pi], m)
			chk.keyOffs[laneKey(m)] = append(chk.keyOffs[laneKey(m)], o)
		}
	}
	var rmu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	errBoom := errors.New("boom")
	h := func(_ context.Context, msgs []kmsg) error {
		chk.start(msgs)
		rmu.Lock()
		r, idx := rng.IntN(10), rng.IntN(len(msgs))
		rmu.Unlock()
		switch {
		case r < 3: // one message fails
			chk.end(msgs, idx, false)
			return &engine.BatchError{Index: idx, Err: errBoom}
		case r == 3: // the whole batch fails
			chk.end(msgs, 0, true)
			return errBoom
		}
		chk.end(msgs, len(msgs), false)
		return nil
	}
	e := engine.NewBatch(c, h, msgKey)
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	var wg sync.WaitGroup
	ps := make([]*engine.Part, parts)
	for pi := range int32(parts) {
		p, err := s.Assign(engine.TopicPartition{Topic: "t", Partition: pi}, 0, "", -1)
		if err != nil {
			t.Fatal(err)
		}
		ps[pi] = p
		wg.Go(func() {
			for _, m := range all[pi] {
				if err := s.Deliver(context.Background(), p, m.off, m); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	var samples, passed atomic.Int64
	sampler := sync.WaitGroup{}
	sampler.Go(func() {
		for {
			for pi, p := range ps {
				cp := p.Watermark().Committable()
				if low := chk.lowestNotDone(int32(pi), perPart); cp > low {
					passed.Add(1)
					t.Errorf("partition %d: commit point %d passed %d, not done", pi, cp, low)
				}
				samples.Add(1)
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	})
	wg.Wait()
	waitUntil(t, func() bool {
		for _, p := range ps {
			if p.Watermark().Committable() != perPart {
				return false
			}
		}
		return true
	})
	close(stop)
	sampler.Wait()
	s.Close(context.Background())
	chk.mu.Lock()
	defer chk.mu.Unlock()
	if len(chk.bad) > 0 {
		t.Fatalf("%d violations, first: %s", len(chk.bad), chk.bad[0])
	}
	if len(chk.done) != parts*perPart {
		t.Fatalf("%d messages done, want %d", len(chk.done), parts*perPart)
	}
	for id, n := range chk.done {
		if n != 1 {
			t.Fatalf("message %v done %d times", id, n)
		}
	}
	nf := 0
	for _, n := range chk.fails {
		nf += n
	}
	t.Logf("%d calls, %.1f messages per call, %d failures, %d commit point samples",
		chk.calls, float64(chk.msgs)/float64(chk.calls), nf, samples.Load())
	if nf == 0 || samples.Load() < 10 {
		t.Fatalf("the test did not exercise failures (%d) or sample the commit point (%d)", nf, samples.Load())
	}
}

// ByKey with 100 keys, 16 workers and a backlog: a batch takes several
// messages of a key (in offset order), so batches average well above one
// message per key a worker can get.
func TestBatchHandlerByKeyBatchesAreLarge(t *testing.T) {
	const n, keys = 20000, 100
	c := cfg()
	c.Concurrency = 16
	c.Ordering = engine.ByKey
	c.BatchSize, c.BatchWait = 100, 10*time.Millisecond
	var calls, msgs atomic.Int64
	e := engine.NewBatch(c, func(_ context.Context, ms []kmsg) error {
		calls.Add(1)
		msgs.Add(int64(len(ms)))
		time.Sleep(time.Millisecond) // a sink's round trip
		return nil
	}, msgKey)
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	offs, ms := make([]int64, n), make([]kmsg, n)
	for i := range offs {
		offs[i], ms[i] = int64(i), kmsg{0, int64(i), []byte(fmt.Sprint("k", rng.IntN(keys)))}
	}
	if _, err := s.DeliverBatch(context.Background(), p, offs, ms); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return p.Watermark().Committable() == n })
	s.Close(context.Background())
	avg := float64(msgs.Load()) / float64(calls.Load())
	t.Logf("%d calls, %.1f messages per call", calls.Load(), avg)
	if avg < 50 {
		t.Fatalf("batches average %.1f messages, want >= 50", avg)
	}
}

// dlRecord is a dead-lettered message.
type dlRecord struct {
	off      int64
	attempts int
	err      error
}

// runBatches runs h as a batch handler over n messages of one partition,
// every one of its own key, until the commit point reaches n; it returns
// what the dead letter got.
func runBatches(t *testing.T, c engine.Config, n int, h engine.BatchHandler[kmsg]) []dlRecord {
	t.Helper()
	var mu sync.Mutex
	var dl []dlRecord
	c.DeadLetter = func(_ context.Context, m any, err error, attempts int) error {
		mu.Lock()
		dl = append(dl, dlRecord{m.(kmsg).off, attempts, err})
		mu.Unlock()
		return nil
	}
	e := engine.NewBatch(c, h, msgKey)
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	offs, ms := make([]int64, n), make([]kmsg, n)
	for i := range offs {
		offs[i], ms[i] = int64(i), kmsg{0, int64(i), []byte(fmt.Sprint("k", i))}
	}
	if _, err := s.DeliverBatch(context.Background(), p, offs, ms); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return p.Watermark().Committable() == int64(n) })
	s.Close(context.Background())
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(dl, func(a, b dlRecord) int { return int(a.off - b.off) })
	return dl
}

// A BatchError's tail is handed out again without an attempt counted: in
// one partition's batches, offset 5 always fails at its index (3 attempts,
// then the dead letter), every later message always fails with the whole
// batch; each is dead-lettered after exactly MaxAttempts failing calls,
// though it was also handed out (and not handled) behind offset 5.
func TestBatchErrorTailIsHandedOutAgainWithoutAnAttempt(t *testing.T) {
	for _, mode := range []engine.Ordering{engine.Unordered, engine.ByKey, engine.ByPartition} {
		t.Run(fmt.Sprintf("ordering=%v", mode), func(t *testing.T) {
			c := cfg()
			c.Concurrency = 1
			c.Ordering = mode
			c.BatchSize, c.BatchWait = 10, 0
			c.Retry = engine.Retry{MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}
			errAt5, errLate := errors.New("offset 5"), errors.New("late")
			var mu sync.Mutex
			calls := map[int64]int{} // failing calls per message
			dl := runBatches(t, c, 10, func(_ context.Context, ms []kmsg) error {
				mu.Lock()
				defer mu.Unlock()
				for i, m := range ms {
					if m.off == 5 {
						calls[5]++
						return &engine.BatchError{Index: i, Err: errAt5}
					}
				}
				if ms[0].off > 5 {
					for _, m := range ms {
						calls[m.off]++
					}
					return errLate
				}
				return nil
			})
			if len(dl) != 5 {
				t.Fatalf("dead letters %v, want offsets 5..9", dl)
			}
			for _, d := range dl {
				want := errLate
				if d.off == 5 {
					want = errAt5
				}
				if d.off < 5 || d.attempts != 3 || calls[d.off] != 3 || !errors.Is(d.err, want) {
					t.Fatalf("offset %d dead-lettered after %d attempts (%d failing calls), error %v; want 3, 3, %v",
						d.off, d.attempts, calls[d.off], d.err, want)
				}
			}
		})
	}
}

// A BatchError whose Index is outside the batch, and a panic, fail the
// whole batch: every message goes through the retry policy (here none) to
// the dead letter.
func TestBatchHandlerBadIndexAndPanicFailTheWholeBatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    engine.BatchHandler[kmsg]
		is   error
	}{
		{"index past the end", func(_ context.Context, ms []kmsg) error {
			return &engine.BatchError{Index: len(ms), Err: errors.New("x")}
		}, nil},
		{"negative index", func(context.Context, []kmsg) error {
			return &engine.BatchError{Index: -1, Err: errors.New("x")}
		}, nil},
		{"panic", func(context.Context, []kmsg) error { panic("boom") }, engine.ErrPanic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg()
			c.BatchSize, c.BatchWait = 8, 5*time.Millisecond
			dl := runBatches(t, c, 8, tc.h)
			if len(dl) != 8 {
				t.Fatalf("%d dead letters, want 8", len(dl))
			}
			for _, d := range dl {
				if tc.is != nil && !errors.Is(d.err, tc.is) {
					t.Fatalf("offset %d: error %v, want %v", d.off, d.err, tc.is)
				}
			}
		})
	}
}

// Bad input: WithBatch's limits are refused by Validate naming the option,
// and a nil batch handler panics (the adapters refuse it first).
func TestBatchBadInput(t *testing.T) {
	for _, tc := range []struct {
		size int
		wait time.Duration
	}{{0, time.Millisecond}, {-1, 0}, {1, -time.Nanosecond}} {
		c := cfg()
		c.BatchSize, c.BatchWait = tc.size, tc.wait
		err := c.Validate()
		if !errors.Is(err, engine.ErrConfig) || !strings.Contains(fmt.Sprint(err), "WithBatch") {
			t.Errorf("BatchSize %d, BatchWait %v: Validate() = %v, want ErrConfig naming WithBatch", tc.size, tc.wait, err)
		}
	}
	c := cfg()
	c.BatchSize, c.BatchWait = 1, 0
	if err := c.Validate(); err != nil {
		t.Errorf("BatchSize 1, BatchWait 0: %v", err)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "nil batch handler") {
			t.Errorf("NewBatch(nil) recovered %v, want a panic naming the nil batch handler", r)
		}
	}()
	engine.NewBatch[kmsg](cfg(), nil, msgKey)
}

// The BatchError's message and unwrapping.
func TestBatchErrorWraps(t *testing.T) {
	inner := errors.New("inner")
	var err error = &engine.BatchError{Index: 3, Err: engine.Permanent(inner)}
	var be *engine.BatchError
	if !errors.Is(err, inner) || !errors.As(fmt.Errorf("w: %w", err), &be) || be.Index != 3 {
		t.Fatalf("%v does not unwrap", err)
	}
	if got := err.Error(); !strings.Contains(got, "3") || !strings.Contains(got, "inner") {
		t.Fatalf("Error() = %q", got)
	}
}

// Every mode, 4 partitions, keyed and keyless messages: every message is
// handled once, a ByPartition batch holds consecutive messages of one
// partition, and the commit points reach the end (a batch spanning lanes
// is released lane by lane: released as one lane's run, a lane's running
// count went negative and the lane was never served again).
func TestBatchHandlerHandlesEveryMessageInEveryMode(t *testing.T) {
	const parts, perPart = 4, 600
	for _, mode := range []engine.Ordering{engine.Unordered, engine.ByKey, engine.ByPartition} {
		t.Run(fmt.Sprintf("ordering=%v", mode), func(t *testing.T) {
			c := cfg()
			c.Concurrency = 4
			c.Window = 128
			c.Ordering = mode
			c.BatchSize, c.BatchWait = 30, time.Millisecond
			var mu sync.Mutex
			seen := map[[2]int64]int{}
			e := engine.NewBatch(c, func(_ context.Context, ms []kmsg) error {
				mu.Lock()
				defer mu.Unlock()
				for i, m := range ms {
					seen[[2]int64{int64(m.part), m.off}]++
					if mode == engine.ByPartition && i > 0 && (m.part != ms[0].part || m.off != ms[i-1].off+1) {
						t.Errorf("ByPartition batch not consecutive messages of one partition: %v", ms)
					}
				}
				return nil
			}, msgKey)
			e.Start(context.Background())
			defer e.Stop()
			s := e.NewSession((&fakeBroker{}).commit)
			var wg sync.WaitGroup
			ps := make([]*engine.Part, parts)
			for pi := range int32(parts) {
				p, err := s.Assign(engine.TopicPartition{Topic: "t", Partition: pi}, 0, "", -1)
				if err != nil {
					t.Fatal(err)
				}
				ps[pi] = p
				wg.Go(func() {
					for o := range int64(perPart) {
						var k []byte
						if o%3 != 0 { // every third keyless
							k = []byte(fmt.Sprint("k", o%5))
						}
						if err := s.Deliver(context.Background(), p, o, kmsg{pi, o, k}); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			waitUntil(t, func() bool {
				for _, p := range ps {
					if p.Watermark().Committable() != perPart {
						return false
					}
				}
				return true
			})
			s.Close(context.Background())
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != parts*perPart {
				t.Fatalf("%d messages handled, want %d", len(seen), parts*perPart)
			}
			for id, n := range seen {
				if n != 1 {
					t.Fatalf("message %v handled %d times", id, n)
				}
			}
		})
	}
}
