package engine_test

// Throughput of the ordering modes, each beside its baseline in the same
// run: Unordered, and the physical limits (a hot key's serial time, one
// sequential loop per partition). Compare the msgs/s of the sub-benchmarks
// of one case; the x_ metrics are already ratios: x_bound to the nominal
// bound (1 ms per call), x_hotbusy and x_busy to the serial handler calls
// (of the hot key, of the busiest partition) as timed: the sleeps overshoot
// 1 ms under load.

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
	keyOf func(rng *rand.Rand, i int) []byte) time.Duration {
	c := cfg()
	c.Concurrency = workers
	c.Ordering = mode
	hotBusy.Store(0)
	for i := range partBusy {
		partBusy[i].Store(0)
	}
	e := engine.New(c, func(_ context.Context, m kmsg) error {
		if work > 0 {
			begin := time.Now()
			time.Sleep(work)
			took := int64(time.Since(begin))
			if &m.key[0] == &hotKeyBytes[0] {
				hotBusy.Add(took)
			}
			partBusy[m.part%8].Add(took)
		}
		return nil
	}, msgKey)
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit, engine.SessionHooks{})
	defer s.Close(context.Background())
	ps := make([]*engine.Part, parts)
	for i := range ps {
		ps[i], _ = s.Assign(engine.TopicPartition{Topic: "t", Partition: int32(i)}, 0, "", -1)
	}
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
	return elapsed
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

// hotBusy sums the time the hot key's handler calls took: its serial time
// as measured, under the machine's load.
var hotBusy atomic.Int64

// partBusy sums the time the handler calls of each partition took.
var partBusy [8]atomic.Int64

// maxPartBusy returns the largest partBusy: with ByPartition, the serial
// time of the busiest partition as measured.
func maxPartBusy() time.Duration {
	var m int64
	for i := range partBusy {
		m = max(m, partBusy[i].Load())
	}
	return time.Duration(m)
}

func BenchmarkOrdering(b *testing.B) {
	modes := []engine.Ordering{engine.Unordered, engine.ByKey}
	for _, mode := range modes {
		b.Run("case=1part-1ms-10kkeys/mode="+mode.String(), func(b *testing.B) {
			runOrdering(b, mode, 1, 64, time.Millisecond, uniformKey)
		})
	}
	for _, mode := range modes {
		b.Run("case=1part-1ms-hotkey/mode="+mode.String(), func(b *testing.B) {
			elapsed := runOrdering(b, mode, 1, 64, time.Millisecond, hotKey)
			// The hot key's serial time: one call after the other.
			hot := (b.N + 9) / 10
			b.ReportMetric(elapsed.Seconds()/(float64(hot)*time.Millisecond.Seconds()), "x_bound")
			b.ReportMetric(elapsed.Seconds()/time.Duration(hotBusy.Load()).Seconds(), "x_hotbusy")
		})
	}
	for _, mode := range modes {
		b.Run("case=8parts-noop-10kkeys/mode="+mode.String(), func(b *testing.B) {
			runOrdering(b, mode, 8, engine.DefaultConcurrency, 0, uniformKey)
		})
	}
	b.Run("case=8parts-1ms/mode=ByPartition", func(b *testing.B) {
		elapsed := runOrdering(b, engine.ByPartition, 8, 64, time.Millisecond, uniformKey)
		b.ReportMetric(elapsed.Seconds()/(float64((b.N+7)/8)*time.Millisecond.Seconds()), "x_bound")
		b.ReportMetric(elapsed.Seconds()/maxPartBusy().Seconds(), "x_busy")
	})
	b.Run("case=8parts-1ms/mode=8SequentialLoops", func(b *testing.B) {
		// The physical limit: each partition handled by its own loop.
		begin := time.Now()
		var wg sync.WaitGroup
		var busy [8]time.Duration
		for pi := range 8 {
			n := b.N / 8
			if pi < b.N%8 {
				n++
			}
			wg.Go(func() {
				for range n {
					t := time.Now()
					time.Sleep(time.Millisecond)
					busy[pi] += time.Since(t)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(begin)
		b.ReportMetric(elapsed.Seconds()/slices.Max(busy[:]).Seconds(), "x_busy")
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(elapsed.Seconds()/(float64((b.N+7)/8)*time.Millisecond.Seconds()), "x_bound")
	})
}
