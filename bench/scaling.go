package bench

// This file holds the scaling curves: the cost per message as the partitions
// of one consumer, the offsets in flight and the acking goroutines grow,
// each for the watermark beside the mutex+btree baseline.

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/inorder/inorder/watermark"
)

const defaultWindow = watermark.DefaultWindow

// ScaleImpls are the implementations the scaling curves compare.
var ScaleImpls = []string{"watermark", "btree"}

// Scaling curves' parameters, as run by the compare command.
var (
	ScalePartitions = []int{1, 10, 100, 1000, 10_000}
	ScaleWindows    = []int{1_000, 10_000, 100_000, 1_000_000}
	ScaleAckers     = []int{1, 4, 16, 64, 256, 1024}
)

// scaleRound is the offsets tracked per round of the partition curve.
const scaleRound = 1 << 15

// Rounds benchmarks implementation impl over rounds of parts partitions with
// window offsets each: one message is tracked (by one goroutine, partitions
// interleaved, perPart offsets each per round) and acked (by GOMAXPROCS
// goroutines, a random permutation of the round); both are timed. It runs
// whole rounds, at least b.N messages, and reports the time per message as
// the ns/msg metric (use it, not ns/op). After each round every partition's
// commit point must be at the end of the round.
func Rounds(b *testing.B, impl string, parts, perPart, window int) {
	w := &workload{name: fmt.Sprintf("parts=%d/perPart=%d", parts, perPart), parts: parts, perPart: perPart}
	for o := range perPart {
		for p := range parts {
			w.track = append(w.track, ref{part: int32(p), off: int32(o)})
		}
	}
	w.last = make([]int64, parts)
	for p := range w.last {
		w.last[p] = int64(perPart)
	}
	procs := runtime.GOMAXPROCS(0)
	acks := append([]ref(nil), w.track...)
	r := rand.New(rand.NewPCG(uint64(parts), uint64(perPart)))
	r.Shuffle(len(acks), func(i, j int) { acks[i], acks[j] = acks[j], acks[i] })
	w.acks = make([][]ref, procs)
	for g := range procs {
		w.acks[g] = acks[g*len(acks)/procs : (g+1)*len(acks)/procs]
	}
	im := New(impl, parts, window)
	defer im.Close()
	a := newAckRunner(im, w)
	defer a.stop()
	b.ReportAllocs()
	b.ResetTimer()
	var took time.Duration
	msgs := 0
	for msgs < b.N {
		begin := time.Now()
		if err := a.track(); err != nil {
			b.Fatal(err)
		}
		if err := a.ack(w.acksPerRound()); err != nil {
			b.Fatal(err)
		}
		took += time.Since(begin)
		if err := a.check(); err != nil {
			b.Fatal(err)
		}
		msgs += w.acksPerRound()
		a.next()
	}
	b.ReportMetric(float64(took.Nanoseconds())/float64(msgs), "ns/msg")
}

// ByPartitions is the partition curve: parts partitions with the default
// window, 32,768 messages per round spread over them (at least one each).
func ByPartitions(b *testing.B, impl string, parts int) {
	Rounds(b, impl, parts, max(1, scaleRound/parts), defaultWindow)
}

// ByWindow is the window curve: one partition whose window is window
// offsets, every one of them in flight at the end of each round's tracking.
func ByWindow(b *testing.B, impl string, window int) {
	Rounds(b, impl, 1, window, window)
}

// ByAckers is the concurrency curve: EndToEndBatch with ackers acking
// goroutines on GOMAXPROCS threads; one op is one offset (also reported as
// ns/msg).
func ByAckers(b *testing.B, impl string, ackers int) {
	im := New(impl, 1, defaultWindow)
	defer im.Close()
	b.ReportAllocs()
	b.ResetTimer()
	d, _, err := endToEnd(im, ackers, int64(b.N), modeBatch)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "ns/msg")
}

// PartitionMemory returns the heap bytes per partition that impl holds for
// parts empty partitions with the default window (the fixed cost of an
// assignment before any message).
func PartitionMemory(impl string, parts int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	im := New(impl, parts, defaultWindow)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(im)
	im.Close()
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(parts)
}
