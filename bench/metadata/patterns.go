// Package metadata compares the commit-metadata codec of
// github.com/inorder/inorder/watermark/metadata with a faithful
// reimplementation of Confluent Parallel Consumer's encodings (pc.go), on the
// patterns of issue 4: sizes (deterministic, asserted by a test), capacity in
// 4096 bytes, and encode/decode time (benchmarks, same run).
package metadata

import (
	"math/rand/v2"

	"github.com/inorder/inorder/ordset"
)

// Commit is the commit point every pattern starts at. Its value does not
// change the sizes much (our trailer tags its low byte only).
const Commit int64 = 1_000_000

// Pattern builds, for a window of n offsets starting at Commit, the set of
// done offsets. Offset Commit itself is never done: it is what holds the
// commit point. Generators are deterministic.
type Pattern struct {
	Name  string
	About string
	N     int64 // the window of the comparison
	Gen   func(n int64) *ordset.Set
}

// Patterns are issue 4's four patterns, two that stress a form each, and
// issue 14's: random holes at other densities and windows, clustered bursts
// and alternating runs of random lengths.
var Patterns = []Pattern{
	{Name: "random-1pct", About: "1% of offsets unacked at random over 100,000", N: 100_000, Gen: Random(0.01)},
	{Name: "stuck-head", About: "one stuck head, 50,000 acked after it", N: 50_001, Gen: StuckHead},
	{Name: "alternating", About: "acked/unacked alternating over 100,000", N: 100_000, Gen: Alternating},
	{Name: "long-runs", About: "acked runs of 500-5000, unacked runs of 1-500, over 100,000", N: 100_000, Gen: LongRuns},
	{Name: "random-50pct", About: "half unacked at random over 100,000 (bitmap's case)", N: 100_000, Gen: Random(0.5)},
	{Name: "random-10pct", About: "10% unacked at random over 100,000", N: 100_000, Gen: Random(0.10)},
	{Name: "random-10pct-20k", About: "10% unacked at random over 20,000", N: 20_000, Gen: Random(0.10)},
	{Name: "random-0.1pct-1M", About: "0.1% unacked at random over 1,000,000", N: 1_000_000, Gen: Random(0.001)},
	{Name: "bursts", About: "bursts of 2-50 unacked offsets, 100-3,000 acked between them, over 100,000", N: 100_000, Gen: Bursts},
	{Name: "alternating-runs", About: "acked and unacked runs of 1-32 alternating, over 100,000", N: 100_000, Gen: AlternatingRuns},
}

// Random marks each offset after the head unacked with probability p.
func Random(p float64) func(n int64) *ordset.Set {
	return func(n int64) *ordset.Set {
		r := rand.New(rand.NewPCG(1, uint64(p*1e6)))
		s := ordset.New()
		lo := int64(-1)
		for i := int64(1); i < n; i++ {
			if r.Float64() >= p {
				if lo < 0 {
					lo = i
				}
				continue
			}
			if lo >= 0 {
				s.AddRange(Commit+lo, Commit+i)
				lo = -1
			}
		}
		if lo >= 0 {
			s.AddRange(Commit+lo, Commit+n)
		}
		return s
	}
}

// StuckHead: the head unacked, everything after it acked.
func StuckHead(n int64) *ordset.Set {
	s := ordset.New()
	s.AddRange(Commit+1, Commit+n)
	return s
}

// Alternating: odd offsets after the head acked, even ones not.
func Alternating(n int64) *ordset.Set {
	s := ordset.New()
	for i := int64(1); i < n; i += 2 {
		s.Add(Commit + i)
	}
	return s
}

// LongRuns: acked runs of 500-5000 offsets separated by unacked runs of 1-500.
func LongRuns(n int64) *ordset.Set {
	r := rand.New(rand.NewPCG(2, 3))
	s := ordset.New()
	i := int64(1)
	for i < n {
		d := min(500+r.Int64N(4501), n-i)
		s.AddRange(Commit+i, Commit+i+d)
		i += d + 1 + r.Int64N(500)
	}
	return s
}

// Bursts: unacked bursts of 2-50 offsets (a slow dependency for a moment),
// separated by 100-3,000 acked offsets.
func Bursts(n int64) *ordset.Set {
	r := rand.New(rand.NewPCG(4, 5))
	s := ordset.New()
	i := 1 + r.Int64N(50) // the head's burst
	for i < n {
		d := min(100+r.Int64N(2901), n-i)
		s.AddRange(Commit+i, Commit+i+d)
		i += d + 2 + r.Int64N(49)
	}
	return s
}

// AlternatingRuns: acked and unacked runs of 1-32 offsets each, alternating.
func AlternatingRuns(n int64) *ordset.Set {
	r := rand.New(rand.NewPCG(6, 7))
	s := ordset.New()
	i := int64(1)
	for i < n {
		d := min(1+r.Int64N(32), n-i)
		s.AddRange(Commit+i, Commit+i+d)
		i += d + 1 + r.Int64N(32)
	}
	return s
}
