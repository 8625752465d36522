package engine_test

// Throughput of the ordering modes, each beside its baseline in the same
// run:
//
//	go test -run '^$' -bench Ordering -count 5 ./adapters/internal/engine/
//
// case=1part-1ms-10kkeys, case=8parts-noop-10kkeys: mode=ByKey against
// mode=Unordered. Targets: ByKey's msgs/s >= 85% and >= 80% of Unordered's,
// that is x_base <= 1.18 and <= 1.25 in .../mode=ByKey/vs=Unordered (the
// separate mode=Unordered and mode=ByKey runs are kept for before/after
// comparisons of each mode's own cost and allocations).
//
// case=1part-1ms-hotkey/.../vs=HotKeyLoop (one message in ten has one hot
// key): the bound is the hot key's serial time. Target for ByKey: x_base
// <= 1.2.
//
// case=8parts-1ms/mode=ByPartition/vs=8SequentialLoops: the bound is one
// sequential loop per partition. Target: x_base <= 1.1.
//
// The vs= runs time the engine and their baseline alternately in the same
// process, in rounds of a few tens of milliseconds (the engine first in even
// rounds, the baseline first in odd ones), with the same handler (a no-op,
// or time.Sleep(1ms) timed): the baseline is Unordered, the hot key's
// messages handled one after the other by one goroutine, or eight
// goroutines each handling its partition's messages one after the other.
// Each round's clock runs from the first delivery to the last handler
// return, engine set-up excluded, on both sides. Metrics: msgs/s (the
// engine's), x_base (the median over rounds of
// elapsed(engine)/elapsed(baseline): the figure to compare with the
// target), x_bound (the engine's elapsed over the nominal bound, 1 ms per
// serial call, which the sleeps overshoot under load), and x_busy or
// x_hotbusy (the engine's elapsed over the serial handler time of its
// busiest partition or its hot key, as timed inside the engine run).

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
)

const benchKeys = 10_000

var benchKeySet = func() [][]byte {
	ks := make([][]byte, benchKeys)
	for i := range ks {
		ks[i] = []byte("key-" + strconv.Itoa(i))
	}
	return ks
}()

// runOrdering delivers b.N messages over parts partitions (one delivering
// goroutine each, as kafka-go's fetch loops) and waits until all are
// handled. keyOf picks the key of the i-th message of a partition.
func runOrdering(b *testing.B, mode engine.Ordering, parts, workers int, work time.Duration,
	keyOf func(rng *rand.Rand, i int) []byte) {
	c := cfg()
	c.Concurrency = workers
	c.Ordering = mode
	e := engine.New(c, func(_ context.Context, m kmsg) error {
		if work > 0 {
			time.Sleep(work)
		}
		return nil
	}, msgKey)
	s, ps, stop := benchSession(e, parts)
	defer stop()
	b.ReportAllocs()
	b.ResetTimer()
	begin := time.Now()
	var wg sync.WaitGroup
	for pi, p := range ps {
		n := b.N / parts
		if pi < b.N%parts {
			n++
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(pi), 9))
			for o := range n {
				m := kmsg{part: int32(pi), off: int64(o), key: keyOf(rng, o)}
				if err := s.Deliver(context.Background(), p, int64(o), m); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for e.Handled() < int64(b.N) {
		time.Sleep(50 * time.Microsecond)
	}
	elapsed := time.Since(begin)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

func uniformKey(rng *rand.Rand, _ int) []byte { return benchKeySet[rng.IntN(benchKeys)] }

// hotKey: one message in ten has the key "hot", the others are uniform.
func hotKey(rng *rand.Rand, i int) []byte {
	if i%10 == 0 {
		return hotKeyBytes
	}
	return uniformKey(rng, i)
}

var hotKeyBytes = []byte("hot")

func isHot(m kmsg) bool { return len(m.key) > 0 && &m.key[0] == &hotKeyBytes[0] }

// busy sums the time handler calls took, as measured under the machine's
// load: those of the hot key (its serial time, with ByKey) and those of each
// partition (with ByPartition, its serial time).
type busy struct {
	hot  atomic.Int64
	part [8]atomic.Int64
}

// sleeper returns the handler both sides of a comparison run: it sleeps
// work and adds the time the call took to bz.
func sleeper(bz *busy, work time.Duration) func(kmsg) {
	return func(m kmsg) {
		begin := time.Now()
		time.Sleep(work)
		took := int64(time.Since(begin))
		if isHot(m) {
			bz.hot.Add(took)
		}
		bz.part[m.part%8].Add(took)
	}
}

// maxPart returns the largest per-partition sum.
func (bz *busy) maxPart() time.Duration {
	var m int64
	for i := range bz.part {
		m = max(m, bz.part[i].Load())
	}
	return time.Duration(m)
}

// partShare returns how many of n messages spread over parts partitions
// partition pi gets: as runOrdering and timeEngine deliver them.
func partShare(n, parts, pi int) int {
	k := n / parts
	if pi < n%parts {
		k++
	}
	return k
}

// timeEngine runs n messages over parts partitions through a fresh engine
// with handler h, delivered as runOrdering does, and returns the time from
// the first delivery to the n-th handler return (engine set-up excluded).
// fetchRun is how many messages of a partition timeEngine offers at once.
const fetchRun = 64

func timeEngine(b *testing.B, mode engine.Ordering, parts, workers, n int, h func(kmsg),
	keyOf func(rng *rand.Rand, i int) []byte) time.Duration {
	c := cfg()
	c.Concurrency = workers
	c.Ordering = mode
	var handled atomic.Int64
	done := make(chan struct{})
	e := engine.New(c, func(_ context.Context, m kmsg) error {
		h(m)
		if handled.Add(1) == int64(n) {
			close(done)
		}
		return nil
	}, msgKey)
	s, ps, stop := benchSession(e, parts)
	defer stop()
	begin := time.Now()
	var wg sync.WaitGroup
	for pi, p := range ps {
		k := partShare(n, parts, pi)
		wg.Go(func() {
			// In fetch-sized batches, as the adapters offer them.
			rng := rand.New(rand.NewPCG(uint64(pi), 9))
			offs, msgs := make([]int64, 0, fetchRun), make([]kmsg, 0, fetchRun)
			for o := range k {
				offs = append(offs, int64(o))
				msgs = append(msgs, kmsg{part: int32(pi), off: int64(o), key: keyOf(rng, o)})
				if len(offs) == fetchRun || o == k-1 {
					if _, err := s.DeliverBatch(context.Background(), p, offs, msgs); err != nil {
						b.Error(err)
						return
					}
					offs, msgs = offs[:0], msgs[:0]
				}
			}
		})
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("timeout: %d of %d handled", handled.Load(), n)
	}
	elapsed := time.Since(begin)
	wg.Wait()
	return elapsed
}

// timeLoops handles the same n messages as timeEngine with one goroutine
// per partition, each calling h on its partition's messages one after the
// other (the physical limit of ByPartition), and returns the time from the
// start to the last return.
func timeLoops(parts, n int, h func(kmsg), keyOf func(rng *rand.Rand, i int) []byte) time.Duration {
	begin := time.Now()
	var wg sync.WaitGroup
	for pi := range parts {
		k := partShare(n, parts, pi)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(pi), 9))
			for o := range k {
				h(kmsg{part: int32(pi), off: int64(o), key: keyOf(rng, o)})
			}
		})
	}
	wg.Wait()
	return time.Since(begin)
}

// timeHotLoop calls h on the hot-key messages among the n that timeEngine
// delivers on one partition, one after the other (the hot key's serial
// time, the bound of ByKey), and returns how long that took.
func timeHotLoop(n int, h func(kmsg)) time.Duration {
	begin := time.Now()
	rng := rand.New(rand.NewPCG(0, 9))
	for o := range n {
		if m := (kmsg{off: int64(o), key: hotKey(rng, o)}); isHot(m) {
			h(m)
		}
	}
	return time.Since(begin)
}

// Messages per side and round: some 50 to 100 ms a side, long enough that
// the start and end of a round (waking the workers, the last call) weigh
// little, short enough for several rounds per second.
const (
	roundSerial = 512     // 1 ms calls, 8 at a time at most (8 partitions, a hot key)
	roundConc   = 4096    // 1 ms calls, 64 at a time
	roundNoop   = 1 << 18 // no-op calls, some 3M/s
)

// alternate runs the engine and its baseline in rounds of round messages
// until each has had b.N messages, the engine first in even rounds and the
// baseline first in odd ones, so that both see the same load. It reports the
// engine's msgs/s and x_base, the median of the per-round
// elapsed(engine)/elapsed(baseline), and returns the engine's total elapsed.
func alternate(b *testing.B, round int, eng, base func(n int) time.Duration) time.Duration {
	var total time.Duration
	var ratios []float64
	for r, left := 0, b.N; left > 0; r++ {
		n := min(left, round)
		left -= n
		var te, tb time.Duration
		if r%2 == 0 {
			te = eng(n)
			tb = base(n)
		} else {
			tb = base(n)
			te = eng(n)
		}
		total += te
		ratios = append(ratios, te.Seconds()/tb.Seconds())
	}
	slices.Sort(ratios)
	med := ratios[len(ratios)/2]
	if len(ratios)%2 == 0 {
		med = (ratios[len(ratios)/2-1] + med) / 2
	}
	b.ReportMetric(float64(b.N)/total.Seconds(), "msgs/s")
	b.ReportMetric(med, "x_base")
	b.ReportMetric(0, "ns/op") // the time of both sides and the set-ups
	return total
}

func BenchmarkOrdering(b *testing.B) {
	modes := []engine.Ordering{engine.Unordered, engine.ByKey}
	for _, mode := range modes {
		b.Run("case=1part-1ms-10kkeys/mode="+mode.String(), func(b *testing.B) {
			runOrdering(b, mode, 1, 64, time.Millisecond, uniformKey)
		})
	}
	b.Run("case=1part-1ms-10kkeys/mode=ByKey/vs=Unordered", func(b *testing.B) {
		var bz busy
		h := sleeper(&bz, time.Millisecond)
		alternate(b, roundConc,
			func(n int) time.Duration { return timeEngine(b, engine.ByKey, 1, 64, n, h, uniformKey) },
			func(n int) time.Duration { return timeEngine(b, engine.Unordered, 1, 64, n, h, uniformKey) })
	})
	for _, mode := range modes {
		b.Run("case=1part-1ms-hotkey/mode="+mode.String()+"/vs=HotKeyLoop", func(b *testing.B) {
			var inEngine, inLoop busy
			var bound time.Duration
			elapsed := alternate(b, roundSerial,
				func(n int) time.Duration {
					bound += time.Duration((n+9)/10) * time.Millisecond // the hot calls
					return timeEngine(b, mode, 1, 64, n, sleeper(&inEngine, time.Millisecond), hotKey)
				},
				func(n int) time.Duration { return timeHotLoop(n, sleeper(&inLoop, time.Millisecond)) })
			b.ReportMetric(elapsed.Seconds()/bound.Seconds(), "x_bound")
			b.ReportMetric(elapsed.Seconds()/time.Duration(inEngine.hot.Load()).Seconds(), "x_hotbusy")
		})
	}
	for _, mode := range modes {
		b.Run("case=8parts-noop-10kkeys/mode="+mode.String(), func(b *testing.B) {
			runOrdering(b, mode, 8, engine.DefaultConcurrency, 0, uniformKey)
		})
	}
	b.Run("case=8parts-noop-10kkeys/mode=ByKey/vs=Unordered", func(b *testing.B) {
		noop := func(kmsg) {}
		w := engine.DefaultConcurrency
		alternate(b, roundNoop,
			func(n int) time.Duration { return timeEngine(b, engine.ByKey, 8, w, n, noop, uniformKey) },
			func(n int) time.Duration { return timeEngine(b, engine.Unordered, 8, w, n, noop, uniformKey) })
	})
	b.Run("case=8parts-1ms/mode=ByPartition/vs=8SequentialLoops", func(b *testing.B) {
		var inEngine, inLoops busy
		var bound, busiest time.Duration
		elapsed := alternate(b, roundSerial,
			func(n int) time.Duration {
				inEngine = busy{}
				d := timeEngine(b, engine.ByPartition, 8, 64, n,
					sleeper(&inEngine, time.Millisecond), uniformKey)
				bound += time.Duration(partShare(n, 8, 0)) * time.Millisecond
				busiest += inEngine.maxPart()
				return d
			},
			func(n int) time.Duration {
				return timeLoops(8, n, sleeper(&inLoops, time.Millisecond), uniformKey)
			})
		b.ReportMetric(elapsed.Seconds()/bound.Seconds(), "x_bound")
		b.ReportMetric(elapsed.Seconds()/busiest.Seconds(), "x_busy")
	})
}
