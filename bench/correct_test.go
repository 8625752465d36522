package bench_test

// A benchmark of a wrong baseline proves nothing: every implementation is
// checked here against a plain model and against the others.

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/inorder/inorder/bench"
	"github.com/inorder/inorder/watermark"
)

// model is the plain reference: per partition, the set of pending offsets
// and the high mark.
type model struct {
	pending []map[int64]bool
	high    []int64
}

func (m *model) commit(p int) int64 {
	c := m.high[p]
	for o := range m.pending[p] {
		c = min(c, o)
	}
	return c
}

// TestTrackersAgreeWithModel runs random sequential programs of Track (with
// gaps and long jumps) and Ack (fresh, duplicate, stale, never tracked,
// negative) on three partitions against every tracker and the model,
// comparing the commit points after every step, and the errors of the
// trackers that report them synchronously (all but the actor).
func TestTrackersAgreeWithModel(t *testing.T) {
	const parts = 3
	for seed := uint64(0); seed < 40; seed++ {
		r := rand.New(rand.NewPCG(seed, 11))
		ims := make([]bench.Impl, len(bench.Trackers))
		for i, name := range bench.Trackers {
			ims[i] = bench.New(name, parts, 1<<16)
		}
		m := &model{pending: make([]map[int64]bool, parts), high: make([]int64, parts)}
		for p := range parts {
			m.pending[p] = map[int64]bool{}
		}
		for step := 0; step < 400; step++ {
			p := r.IntN(parts)
			var op string
			var o int64
			var want error
			track := r.IntN(100) < 40
			if track {
				op = "Track"
				o = m.high[p] + r.Int64N(3)
				if r.IntN(20) == 0 {
					o += r.Int64N(500)
				}
				m.pending[p][o] = true
				m.high[p] = o + 1
			} else {
				op = "Ack"
				switch k := r.IntN(10); {
				case k < 6:
					o = m.high[p] - 1 - r.Int64N(20)
				case k < 8:
					o = m.commit(p) - r.Int64N(50) - 1
				default:
					o = m.high[p] + r.Int64N(10)
				}
				if o < 0 || o >= m.high[p] {
					want = watermark.ErrNotTracked
				} else {
					delete(m.pending[p], o)
				}
			}
			for _, im := range ims {
				var got error
				if track {
					got = im.Track(p, o)
				} else {
					got = im.Ack(p, o)
				}
				im.Sync()
				if im.Name() != "actor" && !errors.Is(got, want) {
					t.Fatalf("seed %d step %d: %s %s(%d, %d) = %v, model says %v", seed, step, im.Name(), op, p, o, got, want)
				}
				for q := range parts {
					if c, w := im.Committable(q), m.commit(q); c != w {
						t.Fatalf("seed %d step %d after %s(%d, %d): %s partition %d commit point %d, model %d", seed, step, op, p, o, im.Name(), q, c, w)
					}
				}
			}
		}
		for _, im := range ims {
			im.Close()
		}
	}
}

// TestTrackersReportOutOfOrder checks the synchronous trackers refuse an
// offset tracked twice.
func TestTrackersReportOutOfOrder(t *testing.T) {
	for _, name := range []string{"watermark", "btree", "heap"} {
		im := bench.New(name, 1, 100)
		if err := im.Track(0, 5); err != nil {
			t.Fatalf("%s: Track(5) = %v", name, err)
		}
		if err := im.Track(0, 5); !errors.Is(err, watermark.ErrOutOfOrder) {
			t.Fatalf("%s: second Track(5) = %v, want ErrOutOfOrder", name, err)
		}
		im.Close()
	}
}

// TestBenchmarkRoundsReachEnd runs the Ack harness for every workload and
// implementation with three goroutines: every round's commit point must
// reach the end of the round.
func TestBenchmarkRoundsReachEnd(t *testing.T) {
	for _, w := range bench.Workloads {
		for _, im := range append(append([]string{}, bench.Trackers...), bench.Limits...) {
			if err := bench.RunRounds(im, w, 3, 2); err != nil {
				t.Error(err)
			}
		}
	}
}

// TestEndToEndReachesTotal runs the end-to-end harness with a partial last
// chunk: the commit point must reach the total for every tracker.
func TestEndToEndReachesTotal(t *testing.T) {
	for _, name := range bench.Trackers {
		im := bench.New(name, 1, watermark.DefaultWindow)
		if _, reads, err := bench.EndToEnd(im, 3, 20_000+17); err != nil {
			t.Error(err)
		} else if reads < 1 {
			t.Errorf("%s: committer never read the commit point", name)
		}
		if c := im.Committable(0); c != 20_000+17 {
			t.Errorf("%s: commit point %d after end to end, want %d", name, c, 20_000+17)
		}
		im.Close()
	}
}

// TestEndToEndWindowSmallerThanInFlight runs the end-to-end harness with a
// window smaller than what the harness keeps in flight, so that the
// producer's TrackWait has to wait for room.
func TestEndToEndWindowSmallerThanInFlight(t *testing.T) {
	im := bench.New("watermark", 1, 300)
	defer im.Close()
	if _, _, err := bench.EndToEnd(im, 2, 50_000); err != nil {
		t.Fatal(err)
	}
	if c := im.Committable(0); c != 50_000 {
		t.Fatalf("commit point %d, want 50000", c)
	}
}

// TestEndToEndBatchReachesTotal runs the batch and range forms of the
// harness, with a partial last chunk, and for the watermark also with a
// window smaller than a chunk, so that a batch is tracked in parts.
func TestEndToEndBatchReachesTotal(t *testing.T) {
	const total = 20_000 + 17
	for _, run := range []struct {
		name string
		f    func(bench.Impl, int, int64) (time.Duration, int, error)
	}{{"batch", bench.EndToEndBatch}, {"range", bench.EndToEndRange}} {
		for _, name := range bench.BatchImpls {
			for _, window := range []int{watermark.DefaultWindow, 100} {
				if window != watermark.DefaultWindow && name != "watermark" {
					continue
				}
				im := bench.New(name, 1, window)
				if _, _, err := run.f(im, 3, total); err != nil {
					t.Errorf("%s/%s/window=%d: %v", run.name, name, window, err)
				} else if c := im.Committable(0); c >= 0 && c != total {
					t.Errorf("%s/%s/window=%d: commit point %d, want %d", run.name, name, window, c, total)
				}
				im.Close()
			}
		}
	}
	actor := bench.New("actor", 1, 1000)
	defer actor.Close()
	if _, _, err := bench.EndToEndBatch(actor, 2, 100); err == nil {
		t.Error("EndToEndBatch of the actor, which has no batch form: no error")
	}
}

// TestWatermarkWithinTwoBitsPerOffset checks issue 2's memory figure: a
// full default window costs at most 2 bits per in-flight offset, far less
// than the baselines.
func TestWatermarkWithinTwoBitsPerOffset(t *testing.T) {
	wm, err := bench.Memory("watermark", 200)
	if err != nil {
		t.Fatal(err)
	}
	if wm*8 > 2 {
		t.Errorf("watermark holds %.3f bits per in-flight offset, want <= 2", wm*8)
	}
	if wm*8 < 1 {
		// One bit per offset is the least a full window can take.
		t.Errorf("watermark measured at %.3f bits per in-flight offset, below 1: the measurement is off", wm*8)
	}
	bt, err := bench.Memory("btree", 2)
	if err != nil {
		t.Fatal(err)
	}
	if bt < 8*wm {
		t.Errorf("btree holds %.3f B per offset, watermark %.3f: the measurement is off", bt, wm)
	}
	t.Logf("bits per in-flight offset: watermark %.2f, btree %.1f", wm*8, bt*8)
}

// TestWatermarkHotPathDoesNotAllocate checks issue 2's 0 allocs/op on
// Track, Ack and Committable.
func TestWatermarkHotPathDoesNotAllocate(t *testing.T) {
	p := watermark.NewPartition(0, watermark.WithWindow(1<<12))
	var o int64
	if n := testing.AllocsPerRun(1000, func() {
		if err := p.Track(o); err != nil {
			t.Fatal(err)
		}
		if err := p.Ack(o); err != nil {
			t.Fatal(err)
		}
		if p.Committable() != o+1 {
			t.Fatal("commit point did not follow")
		}
		o++
	}); n != 0 {
		t.Fatalf("Track+Ack+Committable: %v allocs per run, want 0", n)
	}
}

// TestScalingCurvesRun runs one point of each scaling curve: Rounds checks
// every partition's commit point after each round, and ns/msg is reported.
func TestScalingCurvesRun(t *testing.T) {
	for name, f := range map[string]func(b *testing.B){
		"partitions": func(b *testing.B) { bench.ByPartitions(b, "watermark", 100) },
		"window":     func(b *testing.B) { bench.ByWindow(b, "btree", 1000) },
		"ackers":     func(b *testing.B) { bench.ByAckers(b, "watermark", 64) },
	} {
		r := testing.Benchmark(f)
		if r.N == 0 || r.Extra["ns/msg"] <= 0 {
			t.Errorf("%s: N=%d ns/msg=%v (the benchmark failed)", name, r.N, r.Extra["ns/msg"])
		}
	}
	if m := bench.PartitionMemory("watermark", 10); m < 8*watermark.DefaultWindow/40 {
		t.Errorf("watermark: %.0f bytes per partition, below its ring", m)
	}
}
