package engine_test

// The ordering modes through the whole engine: real workers, sessions and
// watermarks.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
)

type kmsg struct {
	part int32
	off  int64
	key  []byte
}

func msgKey(m kmsg) []byte { return m.key }

// laneCheck records handler calls and the ordering violations it sees.
type laneCheck struct {
	mode    engine.Ordering
	keyless bool
	mu      sync.Mutex
	running map[string]bool
	last    map[string]int64
	handled map[[2]int64]int
	bad     []string
}

func newLaneCheck(mode engine.Ordering, keyless bool) *laneCheck {
	return &laneCheck{mode: mode, keyless: keyless, running: map[string]bool{},
		last: map[string]int64{}, handled: map[[2]int64]int{}}
}

func (c *laneCheck) lane(m kmsg) string {
	switch {
	case c.mode == engine.ByPartition:
		return fmt.Sprint(m.part)
	case c.mode == engine.ByKey && (len(m.key) > 0 || c.keyless):
		return fmt.Sprintf("%d/%s", m.part, m.key)
	}
	return ""
}

func (c *laneCheck) handle(_ context.Context, m kmsg) error {
	l := c.lane(m)
	c.mu.Lock()
	if l != "" {
		if c.running[l] {
			c.bad = append(c.bad, fmt.Sprintf("%d/%d overlaps another call of %q", m.part, m.off, l))
		}
		if last, ok := c.last[l]; ok && last >= m.off {
			c.bad = append(c.bad, fmt.Sprintf("%d/%d starts after %d of %q", m.part, m.off, last, l))
		}
		c.running[l], c.last[l] = true, m.off
	}
	c.mu.Unlock()
	for range int(m.off % 7) { // let other calls interleave
		runtime.Gosched()
	}
	c.mu.Lock()
	c.running[l] = false
	c.handled[[2]int64{int64(m.part), m.off}]++
	c.mu.Unlock()
	return nil
}

func (c *laneCheck) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.handled)
}

// Every mode: handler calls of one key (ByKey) or partition (ByPartition)
// never overlap and start in offset order; every message is handled once.
func TestOrderingModesHoldThroughTheEngine(t *testing.T) {
	const parts, perPart = 4, 800
	for _, mode := range []engine.Ordering{engine.Unordered, engine.ByKey, engine.ByPartition} {
		for _, keyless := range []bool{false, true} {
			t.Run(fmt.Sprintf("ordering=%v/keyless_ordered=%v", mode, keyless), func(t *testing.T) {
				c := cfg()
				c.Concurrency = 8
				c.Window = 64 // deliveries also wait for room
				c.Ordering, c.KeylessOrdered = mode, keyless
				chk := newLaneCheck(mode, keyless)
				e := engine.New(c, chk.handle, msgKey)
				e.Start(context.Background())
				defer e.Stop()
				fb := &fakeBroker{}
				s := e.NewSession(fb.commit)
				var wg sync.WaitGroup
				for pi := range int32(parts) {
					p, err := s.Assign(engine.TopicPartition{Topic: "t", Partition: pi}, 0, "", -1)
					if err != nil {
						t.Fatal(err)
					}
					wg.Go(func() { // the partition's fetch loop
						rng := rand.New(rand.NewPCG(uint64(pi), 3))
						for o := range int64(perPart) {
							var k []byte
							if r := rng.IntN(12); r > 0 { // 0: keyless
								k = []byte(fmt.Sprint("k", r))
							}
							if err := s.Deliver(context.Background(), p, o, kmsg{pi, o, k}); err != nil {
								t.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				waitUntil(t, func() bool { return chk.count() == parts*perPart })
				s.Close(context.Background())
				chk.mu.Lock()
				defer chk.mu.Unlock()
				if len(chk.bad) > 0 {
					t.Fatalf("%d violations, first: %s", len(chk.bad), chk.bad[0])
				}
				for k, n := range chk.handled {
					if n != 1 {
						t.Fatalf("message %v handled %d times", k, n)
					}
				}
				if n := e.Handled(); n != parts*perPart {
					t.Fatalf("Handled() = %d, want %d", n, parts*perPart)
				}
			})
		}
	}
}

// A partition whose handlers all block does not starve another partition
// that has messages ready: with the old single FIFO, the blocked partition's
// backlog took every worker and the other's messages waited behind it.
func TestBlockedPartitionDoesNotStarveAnother(t *testing.T) {
	for _, mode := range []engine.Ordering{engine.Unordered, engine.ByKey} {
		t.Run(fmt.Sprintf("ordering=%v", mode), func(t *testing.T) {
			c := cfg()
			c.Ordering = mode
			gate := make(chan struct{})
			var mu sync.Mutex
			handledB := 0
			e := engine.New(c, func(ctx context.Context, m kmsg) error {
				if m.part == 0 {
					<-gate
					return nil
				}
				mu.Lock()
				handledB++
				mu.Unlock()
				return nil
			}, msgKey)
			s := e.NewSession((&fakeBroker{}).commit)
			defer e.Stop()
			defer s.Close(context.Background())
			defer close(gate)
			pa, _ := s.Assign(engine.TopicPartition{Topic: "t", Partition: 0}, 0, "", -1)
			pb, _ := s.Assign(engine.TopicPartition{Topic: "t", Partition: 1}, 0, "", -1)
			for o := range int64(200) {
				if err := s.Deliver(context.Background(), pa, o, kmsg{0, o, []byte(fmt.Sprint(o))}); err != nil {
					t.Fatal(err)
				}
			}
			for o := range int64(50) {
				if err := s.Deliver(context.Background(), pb, o, kmsg{1, o, []byte(fmt.Sprint(o))}); err != nil {
					t.Fatal(err)
				}
			}
			// Both backlogs are queued before the workers start: the first
			// workers must not all go to partition 0.
			e.Start(context.Background())
			waitUntil(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return handledB == 50
			})
		})
	}
}

// Messages queued behind a running one (ByPartition) are dropped when the
// partition is revoked: never handed to the handler, not waited for by the
// drain (RevokeTimeout is an hour here), not committed.
func TestRevokeDropsQueuedMessages(t *testing.T) {
	for _, lose := range []bool{false, true} {
		t.Run(fmt.Sprintf("lose=%v", lose), func(t *testing.T) {
			c := cfg()
			c.Ordering = engine.ByPartition
			c.RevokeTimeout = time.Hour
			started, release := make(chan struct{}), make(chan struct{})
			var mu sync.Mutex
			var handled []int64
			e := engine.New(c, func(ctx context.Context, m kmsg) error {
				if m.off == 0 {
					close(started)
					<-release
				}
				mu.Lock()
				handled = append(handled, m.off)
				mu.Unlock()
				return nil
			}, msgKey)
			e.Start(context.Background())
			defer e.Stop()
			fb := &fakeBroker{}
			s := e.NewSession(fb.commit)
			defer s.Close(context.Background())
			p, _ := s.Assign(tp, 0, "", -1)
			for o := range int64(100) {
				if err := s.Deliver(context.Background(), p, o, kmsg{0, o, nil}); err != nil {
					t.Fatal(err)
				}
			}
			<-started
			done := make(chan struct{})
			go func() {
				if lose {
					s.Lose(tp)
				} else {
					s.Revoke(context.Background(), tp)
				}
				close(done)
			}()
			waitUntil(t, p.Revoked)
			close(release)
			select {
			case <-done:
			case <-time.After(30 * time.Second): // hang guard
				t.Fatal("revoke waited for messages that were dropped")
			}
			// Offset 0 returns; the 99 queued are dropped, counted as unackable.
			waitUntil(t, func() bool { return e.Handled() == 1 && engine.Unackable(p) == 99 })
			mu.Lock()
			defer mu.Unlock()
			if len(handled) != 1 || handled[0] != 0 {
				t.Fatalf("handled %v after revoke, want only offset 0 (running when revoked)", handled)
			}
			got := fb.all()
			if lose && len(got) != 0 || !lose && (len(got) != 1 || got[0].Offset != 1) {
				t.Fatalf("commits %+v, want none if lost, else one at 1", got)
			}
		})
	}
}

func TestConfigRefusesUnknownOrdering(t *testing.T) {
	c := cfg()
	c.Ordering = engine.Ordering(7)
	err := c.Validate()
	if !errors.Is(err, engine.ErrConfig) || !strings.Contains(err.Error(), "Ordering") {
		t.Fatalf("Validate() = %v, want ErrConfig naming Ordering", err)
	}
}

// Unordered intake (Offer) and handling allocate nothing per message.
func TestUnorderedDeliverAndHandleDoNotAllocate(t *testing.T) {
	c := cfg()
	c.Concurrency = 2
	handled := make(chan struct{})
	e := engine.New(c, func(context.Context, int64) error {
		handled <- struct{}{}
		return nil
	}, nil)
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	defer s.Close(context.Background())
	p, _ := s.Assign(tp, 0, "", -1)
	offs, msgs := make([]int64, 1), make([]int64, 1) // a fetch's, reused
	var o int64
	allocs := testing.AllocsPerRun(2000, func() {
		offs[0], msgs[0] = o, o
		if _, err := s.Offer(p, offs, msgs, 0); err != nil {
			t.Fatal(err)
		}
		<-handled
		o++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per message, want 0", allocs)
	}
}

// Workers are woken for every message that may start: with handlers that
// block, every worker ends up busy when there is enough allowed work.
func TestEveryWorkerTakesAllowedWork(t *testing.T) {
	for _, mode := range []engine.Ordering{engine.Unordered, engine.ByKey, engine.ByPartition} {
		t.Run(fmt.Sprintf("ordering=%v", mode), func(t *testing.T) {
			const workers, parts = 4, 4
			c := cfg()
			c.Concurrency = workers
			c.Ordering = mode
			gate := make(chan struct{})
			var mu sync.Mutex
			running := 0
			e := engine.New(c, func(ctx context.Context, m kmsg) error {
				mu.Lock()
				running++
				mu.Unlock()
				<-gate
				return nil
			}, msgKey)
			e.Start(context.Background())
			defer e.Stop()
			s := e.NewSession((&fakeBroker{}).commit)
			defer s.Close(context.Background())
			defer close(gate)
			busy := func(n int) func() bool {
				return func() bool {
					mu.Lock()
					defer mu.Unlock()
					return running == n
				}
			}
			// One message at a time, each taken before the next is
			// delivered: the other workers are parked by then and must be
			// woken.
			for pi := range int32(parts) {
				p, _ := s.Assign(engine.TopicPartition{Topic: "t", Partition: pi}, 0, "", -1)
				if err := s.Deliver(context.Background(), p, 0, kmsg{pi, 0, []byte("k")}); err != nil {
					t.Fatal(err)
				}
				waitUntil(t, busy(int(pi)+1))
			}
		})
	}
}

func TestNewRefusesByKeyWithoutAKeyFunction(t *testing.T) {
	c := cfg()
	c.Ordering = engine.ByKey
	defer func() {
		if recover() == nil {
			t.Fatal("New(ByKey, nil key function) did not panic")
		}
	}()
	engine.New(c, func(context.Context, kmsg) error { return nil }, nil)
}
