package bench

// This file holds the workloads and the parallel Ack, Track and Committable
// benchmarks that run them. Offsets are never handed out from a shared
// counter: each round tracks a batch (timer stopped), then every acking
// goroutine acks its own precomputed, disjoint part of it.

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/inorder/inorder/watermark"
)

// Workload names, in table order.
var Workloads = []string{"inorder", "random", "stuck", "gaps", "partitions"}

// roundSize is the number of offsets tracked per round: well inside the
// default window, so that a round never waits for room.
const roundSize = 1 << 15

// workload is a round of offsets: which are tracked (in order), and how the
// acks are dealt to goroutines.
type workload struct {
	name    string
	parts   int   // partitions
	perPart int   // offsets per partition per round
	track   []ref // tracked offsets, in tracking order
	acks    [][]ref
	late    []ref   // acked after every goroutine is done (the stuck head)
	last    []int64 // per partition: one past the last tracked relative offset
}

// acksPerRound is the number of Ack calls of a full round.
func (w *workload) acksPerRound() int { return len(w.track) }

// newWorkload builds workload name dealt to procs goroutines.
//
//   - inorder: one partition, every offset tracked; goroutine g acks offsets
//     g, g+procs, g+2*procs... in ascending order (a worker pool taking
//     messages in order).
//   - random: one partition; the acks are a random permutation of the round,
//     cut into procs slices.
//   - stuck: random, but the head offset of each round is acked last, after
//     every other ack of the round (a slow message).
//   - gaps: random, and every tenth offset is a gap (never tracked).
//   - partitions: 1,000 partitions, 32 offsets each per round, tracked
//     interleaved; the acks are a random permutation across partitions.
func newWorkload(name string, procs int) *workload {
	w := &workload{name: name, parts: 1, perPart: roundSize}
	if name == "partitions" {
		w.parts, w.perPart = 1000, 32
	}
	for o := 0; o < w.perPart; o++ {
		for p := 0; p < w.parts; p++ {
			if name == "gaps" && o%10 == 9 {
				continue
			}
			w.track = append(w.track, ref{part: int32(p), off: int32(o)})
		}
	}
	w.last = make([]int64, w.parts)
	for _, r := range w.track {
		w.last[r.part] = max(w.last[r.part], int64(r.off)+1)
	}
	acks := slices.Clone(w.track)
	w.acks = make([][]ref, procs)
	switch name {
	case "inorder":
		for i, r := range acks {
			w.acks[i%procs] = append(w.acks[i%procs], r)
		}
		return w
	case "random", "stuck", "gaps", "partitions":
	default:
		panic(fmt.Sprintf("bench: unknown workload %q", name))
	}
	if name == "stuck" {
		w.late, acks = acks[:1], acks[1:]
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(acks), func(i, j int) { acks[i], acks[j] = acks[j], acks[i] })
	for g := range procs {
		w.acks[g] = acks[g*len(acks)/procs : (g+1)*len(acks)/procs]
	}
	return w
}

// ackRunner runs rounds of a workload on an implementation with persistent
// acking goroutines.
type ackRunner struct {
	im    Impl
	w     *workload
	start []chan int // per goroutine: how many of its acks to do this round
	done  chan int   // errors of each goroutine's round
	base  int64
	wg    sync.WaitGroup
}

func newAckRunner(im Impl, w *workload) *ackRunner {
	a := &ackRunner{im: im, w: w, start: make([]chan int, len(w.acks)), done: make(chan int, len(w.acks))}
	for g := range a.start {
		a.start[g] = make(chan int)
		a.wg.Add(1)
		go a.worker(g)
	}
	return a
}

func (a *ackRunner) worker(g int) {
	defer a.wg.Done()
	for n := range a.start[g] {
		a.done <- a.im.ackAll(a.base, a.w.acks[g][:n])
	}
}

// stop ends the goroutines and waits for them.
func (a *ackRunner) stop() {
	for _, c := range a.start {
		close(c)
	}
	a.wg.Wait()
}

// track tracks the next round. Not timed.
func (a *ackRunner) track() error {
	if errs := a.im.trackAll(a.base, a.w.track); errs != 0 {
		return fmt.Errorf("%s/%s: %d Track errors at base %d", a.im.Name(), a.w.name, errs, a.base)
	}
	return nil
}

// ack does n acks of the current round (all of them when n is
// acksPerRound, else a prefix of each goroutine's share, the late head
// excluded) and waits for them to take effect.
func (a *ackRunner) ack(n int) error {
	full := n >= a.w.acksPerRound()
	left := n
	for g, c := range a.start {
		k := len(a.w.acks[g])
		if !full {
			k = min(k, (left+len(a.start)-g-1)/(len(a.start)-g))
		}
		left -= k
		c <- k
	}
	errs := 0
	for range a.start {
		errs += <-a.done
	}
	if full && len(a.w.late) > 0 {
		errs += a.im.ackAll(a.base, a.w.late)
	}
	a.im.Sync()
	if errs != 0 {
		return fmt.Errorf("%s/%s: %d Ack errors at base %d", a.im.Name(), a.w.name, errs, a.base)
	}
	return nil
}

// check verifies, after a full round, that every partition's commit point
// reached the end of the round.
func (a *ackRunner) check() error {
	if a.im.Committable(0) < 0 {
		return nil // a limit: no commit point
	}
	for p, last := range a.w.last {
		if c, want := a.im.Committable(p), a.base+last; c != want {
			return fmt.Errorf("%s/%s: partition %d commit point %d after a full round, want %d", a.im.Name(), a.w.name, p, c, want)
		}
	}
	return nil
}

// next moves to the next round.
func (a *ackRunner) next() { a.base += int64(a.w.perPart) }

// Ack benchmarks implementation impl on workload: one op is one Ack, done by
// GOMAXPROCS goroutines in parallel (set it with -cpu). Each round tracks
// 32,768 offsets with the timer stopped; the timed part is the acks and, for
// the actor, waiting until its owner goroutine applied them. After every full
// round the commit point of a tracker must have reached the end of the round,
// or the benchmark fails.
func Ack(b *testing.B, impl, workload string) {
	w := newWorkload(workload, runtime.GOMAXPROCS(0))
	im := New(impl, w.parts, watermark.DefaultWindow)
	defer im.Close()
	a := newAckRunner(im, w)
	defer a.stop()
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	for done := 0; done < b.N; {
		if err := a.track(); err != nil {
			b.Fatal(err)
		}
		n := min(w.acksPerRound(), b.N-done)
		b.StartTimer()
		err := a.ack(n)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if n == w.acksPerRound() {
			if err := a.check(); err != nil {
				b.Fatal(err)
			}
		}
		done += n
		a.next()
	}
}

// Track benchmarks implementation impl tracking workload's offsets (inorder
// or gaps; a gap is an offset skipped, not a call): one op is one Track call
// by the single tracking goroutine. Each round's offsets are acked with the
// timer stopped.
func Track(b *testing.B, impl, workload string) {
	w := newWorkload(workload, 1)
	im := New(impl, w.parts, watermark.DefaultWindow)
	defer im.Close()
	b.ReportAllocs()
	b.ResetTimer()
	var base int64
	for done := 0; done < b.N; {
		n := min(len(w.track), b.N-done)
		if errs := im.trackAll(base, w.track[:n]); errs != 0 {
			b.Fatalf("%s/%s: %d Track errors", impl, workload, errs)
		}
		im.Sync()
		b.StopTimer()
		if errs := im.ackAll(base, w.track[:n]); errs != 0 {
			b.Fatalf("%s/%s: %d Ack errors", impl, workload, errs)
		}
		im.Sync()
		b.StartTimer()
		done += n
		base += int64(w.perPart)
	}
}

// Committable benchmarks reading the commit point from GOMAXPROCS goroutines
// while it does not move: one partition, 32,768 offsets tracked, all but the
// head acked. One op is one Committable call.
func Committable(b *testing.B, impl string) {
	w := newWorkload("stuck", 1)
	im := New(impl, 1, watermark.DefaultWindow)
	defer im.Close()
	if im.trackAll(0, w.track)+im.ackAll(0, w.acks[0]) != 0 {
		b.Fatal("setup failed")
	}
	im.Sync()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if im.Committable(0) != 0 {
				panic("bench: commit point moved past the stuck head")
			}
		}
	})
}
