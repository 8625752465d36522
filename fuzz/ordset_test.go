// FuzzOrdset: ordset.Set driven by a byte program against a map[int64]bool,
// over a small value domain so that ranges collide, merge and split.
package fuzz_test

import (
	"math"
	"slices"
	"testing"

	"github.com/inorder/inorder/ordset"
)

// ordsetVal maps a byte to the value domain [-8, 56).
func ordsetVal(b byte) int64 { return int64(b%64) - 8 }

// ordsetRuns returns the model's values as coalesced half-open ranges.
func ordsetRuns(m map[int64]bool, from int64) [][2]int64 {
	var vs []int64
	for v := range m {
		if v >= from {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	var runs [][2]int64
	for _, v := range vs {
		if n := len(runs); n > 0 && runs[n-1][1] == v {
			runs[n-1][1] = v + 1
		} else {
			runs = append(runs, [2]int64{v, v + 1})
		}
	}
	return runs
}

func ordsetCheck(t *testing.T, step int, s *ordset.Set, m map[int64]bool, probe int64) {
	t.Helper()
	if s.Len() != int64(len(m)) {
		t.Fatalf("step %d: Len = %d, model %d", step, s.Len(), len(m))
	}
	runs := ordsetRuns(m, math.MinInt64)
	var got [][2]int64
	for lo, hi := range s.Ranges() {
		got = append(got, [2]int64{lo, hi})
	}
	if !slices.Equal(got, runs) {
		t.Fatalf("step %d: Ranges = %v, model %v", step, got, runs)
	}
	if s.NumRanges() != len(runs) {
		t.Fatalf("step %d: NumRanges = %d, model %d", step, s.NumRanges(), len(runs))
	}
	mn, okMin := s.Min()
	mx, okMax := s.Max()
	if okMin != (len(m) > 0) || okMax != (len(m) > 0) {
		t.Fatalf("step %d: Min/Max ok = %v/%v with %d values", step, okMin, okMax, len(m))
	}
	if len(runs) > 0 && (mn != runs[0][0] || mx != runs[len(runs)-1][1]-1) {
		t.Fatalf("step %d: Min, Max = %d, %d, model %d, %d", step, mn, mx, runs[0][0], runs[len(runs)-1][1]-1)
	}
	got = got[:0]
	for lo, hi := range s.RangesFrom(probe) {
		got = append(got, [2]int64{lo, hi})
	}
	if want := ordsetRuns(m, probe); !slices.Equal(got, want) {
		t.Fatalf("step %d: RangesFrom(%d) = %v, model %v", step, probe, got, want)
	}
	// Early exit from the iterators must be honoured.
	n := 0
	for range s.RangesFrom(probe) {
		n++
		break
	}
	if n > 1 {
		t.Fatalf("step %d: RangesFrom kept yielding after break", step)
	}
}

// FuzzOrdset interprets the input as 3-byte instructions (op, a, b).
func FuzzOrdset(f *testing.F) {
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) > 3*400 {
			prog = prog[:3*400]
		}
		s := ordset.New()
		m := map[int64]bool{}
		for step := 0; step+2 < len(prog); step += 3 {
			op, a, b := prog[step], ordsetVal(prog[step+1]), prog[step+2]
			lo, hi := a, a+int64(b%20)
			if b&0x80 != 0 {
				hi = a - int64(b%4) // empty or inverted: a no-op
			}
			switch op % 11 {
			case 0:
				if got := s.Add(a); got != !m[a] {
					t.Fatalf("step %d: Add(%d) = %v, model had it: %v", step, a, got, m[a])
				}
				m[a] = true
			case 1:
				s.AddRange(lo, hi)
				for v := lo; v < hi; v++ {
					m[v] = true
				}
			case 2:
				if got := s.Remove(a); got != m[a] {
					t.Fatalf("step %d: Remove(%d) = %v, model had it: %v", step, a, got, m[a])
				}
				delete(m, a)
			case 3:
				s.RemoveRange(lo, hi)
				for v := lo; v < hi; v++ {
					delete(m, v)
				}
			case 4:
				s.RemoveBelow(a)
				for v := range m {
					if v < a {
						delete(m, v)
					}
				}
			case 5:
				if s.Contains(a) != m[a] {
					t.Fatalf("step %d: Contains(%d) = %v, model %v", step, a, s.Contains(a), m[a])
				}
			case 6:
				want := a
				for m[want] {
					want++
				}
				if got := s.NextAbsent(a); got != want {
					t.Fatalf("step %d: NextAbsent(%d) = %d, model %d", step, a, got, want)
				}
			case 7:
				// A clone is independent both ways.
				c := s.Clone()
				c.AddRange(lo, hi)
				c.Remove(a + 3)
				cm := map[int64]bool{}
				for v := range m {
					cm[v] = true
				}
				for v := lo; v < hi; v++ {
					cm[v] = true
				}
				delete(cm, a+3)
				ordsetCheck(t, step, c, cm, a)
				s.Add(a - 1)
				m[a-1] = true
				ordsetCheck(t, step, c, cm, a)
			case 8:
				// The writes that keep ordset's slice form: Clear, adds at or
				// past the last range, suffix cuts, Grow.
				switch b % 8 {
				case 0:
					s.Clear()
					clear(m)
				case 1, 2, 3:
					lo := a
					if mx, ok := s.Max(); ok {
						lo = mx - 1 + int64(b>>4&3) // overlapping, touching or past the end
					}
					hi := lo + 1 + int64(b>>2&3)
					s.AddRange(lo, hi)
					for v := lo; v < hi; v++ {
						m[v] = true
					}
				case 4, 5:
					s.RemoveRange(a, math.MaxInt64)
					for v := range m {
						if v >= a {
							delete(m, v)
						}
					}
				case 6:
					s.Grow(int(b >> 3))
				}
			case 9:
				// The top of the int64 range: half-open ranges cannot hold it.
				if s.Add(math.MaxInt64) || s.Contains(math.MaxInt64) || s.Remove(math.MaxInt64) {
					t.Fatalf("step %d: math.MaxInt64 accepted", step)
				}
				s.AddRange(math.MaxInt64-2, math.MaxInt64)
				m[math.MaxInt64-2], m[math.MaxInt64-1] = true, true
				ordsetCheck(t, step, s, m, a)
				s.RemoveRange(math.MaxInt64-2, math.MaxInt64)
				delete(m, math.MaxInt64-2)
				delete(m, math.MaxInt64-1)
			case 10:
				// Negative and extreme values far from the domain.
				v := math.MinInt64 + int64(b)
				s.Add(v)
				m[v] = true
			}
			ordsetCheck(t, step, s, m, a)
		}
	})
}
