package ordset_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/inorder/inorder/ordset"
)

// model is the obviously-correct reference: a plain map.
type model map[int64]bool

func (m model) check(t *testing.T, s *ordset.Set, lo, hi int64) {
	t.Helper()
	if got, want := s.Len(), int64(len(m)); got != want {
		t.Fatalf("Len = %d, model has %d", got, want)
	}
	for v := lo; v < hi; v++ {
		if got := s.Contains(v); got != m[v] {
			t.Fatalf("Contains(%d) = %v, model says %v", v, got, m[v])
		}
		want := v
		for m[want] {
			want++
		}
		if got := s.NextAbsent(v); got != want {
			t.Fatalf("NextAbsent(%d) = %d, want %d", v, got, want)
		}
	}
	// Ranges are ascending, disjoint, coalesced and cover exactly the model.
	prevHi := int64(math.MinInt64)
	var n int64
	for a, b := range s.Ranges() {
		if a >= b {
			t.Fatalf("empty range [%d,%d)", a, b)
		}
		if a <= prevHi {
			t.Fatalf("range [%d,%d) not coalesced with or after previous end %d", a, b, prevHi)
		}
		for v := a; v < b; v++ {
			if !m[v] {
				t.Fatalf("range [%d,%d) holds %d, absent from model", a, b, v)
			}
		}
		n += b - a
		prevHi = b
	}
	if n != int64(len(m)) {
		t.Fatalf("ranges hold %d values, model %d", n, len(m))
	}
	// RangesFrom at a few probes: the model's runs from there (every
	// value of the model lies in [lo, hi)).
	for v := lo; v < hi; v += 13 {
		var got, want [][2]int64
		for a, b := range s.RangesFrom(v) {
			got = append(got, [2]int64{a, b})
		}
		for x := v; x < hi; x++ {
			if !m[x] {
				continue
			}
			if k := len(want); k > 0 && want[k-1][1] == x {
				want[k-1][1]++
			} else {
				want = append(want, [2]int64{x, x + 1})
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("RangesFrom(%d) = %v, model %v", v, got, want)
		}
	}
	var min, max int64 = math.MaxInt64, math.MinInt64
	for v := range m {
		min, max = minmax(min, max, v)
	}
	gotMin, okMin := s.Min()
	gotMax, okMax := s.Max()
	if okMin != (len(m) > 0) || okMax != (len(m) > 0) || (len(m) > 0 && (gotMin != min || gotMax != max)) {
		t.Fatalf("Min/Max = %d,%v/%d,%v; model %d/%d (len %d)", gotMin, okMin, gotMax, okMax, min, max, len(m))
	}
}

func minmax(min, max, v int64) (int64, int64) {
	if v < min {
		min = v
	}
	if v > max {
		max = v
	}
	return min, max
}

func TestSetAgainstModel(t *testing.T) {
	const lo, hi = -5, 200
	for seed := uint64(0); seed < 40; seed++ {
		r := rand.New(rand.NewPCG(seed, 1))
		s, m := ordset.New(), model{}
		for step := 0; step < 400; step++ {
			a := lo + r.Int64N(hi-lo)
			b := a + r.Int64N(20) - 2
			switch r.IntN(6) {
			case 0:
				if got, want := s.Add(a), !m[a]; got != want {
					t.Fatalf("seed %d: Add(%d) = %v, want %v", seed, a, got, want)
				}
				m[a] = true
			case 1:
				if got, want := s.Remove(a), m[a]; got != want {
					t.Fatalf("seed %d: Remove(%d) = %v, want %v", seed, a, got, want)
				}
				delete(m, a)
			case 2:
				s.AddRange(a, b)
				for v := a; v < b; v++ {
					m[v] = true
				}
			case 3:
				s.RemoveRange(a, b)
				for v := a; v < b; v++ {
					delete(m, v)
				}
			case 4:
				if r.IntN(10) == 0 {
					s.RemoveBelow(a)
					for v := range m {
						if v < a {
							delete(m, v)
						}
					}
				}
			case 5:
				var got []int64
				for x, y := range s.RangesFrom(a) {
					for v := x; v < y; v++ {
						got = append(got, v)
					}
				}
				var want []int64
				for v := a; v < hi+30; v++ {
					if m[v] {
						want = append(want, v)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("seed %d: RangesFrom(%d) = %v, want %v", seed, a, got, want)
				}
			}
			m.check(t, s, lo-2, hi+30)
		}
	}
}

func TestSetBoundaries(t *testing.T) {
	t.Run("empty set answers without values", func(t *testing.T) {
		s := ordset.New()
		if _, ok := s.Min(); ok {
			t.Fatal("Min of empty set reported a value")
		}
		if _, ok := s.Max(); ok {
			t.Fatal("Max of empty set reported a value")
		}
		if s.NextAbsent(7) != 7 || s.Len() != 0 || s.NumRanges() != 0 {
			t.Fatal("empty set is not empty")
		}
	})
	t.Run("empty and inverted ranges are no-ops", func(t *testing.T) {
		s := ordset.New()
		s.AddRange(5, 5)
		s.AddRange(9, 3)
		s.RemoveRange(9, 3)
		if s.Len() != 0 {
			t.Fatalf("Len = %d after empty ranges", s.Len())
		}
	})
	t.Run("MaxInt64 cannot be added", func(t *testing.T) {
		s := ordset.New()
		if s.Add(math.MaxInt64) || s.Remove(math.MaxInt64) || s.Len() != 0 {
			t.Fatal("MaxInt64 accepted")
		}
	})
	t.Run("a million consecutive values cost one range", func(t *testing.T) {
		s := ordset.New()
		for v := int64(0); v < 1_000_000; v += 1000 {
			s.AddRange(v, v+1000)
		}
		if s.NumRanges() != 1 || s.Len() != 1_000_000 {
			t.Fatalf("NumRanges = %d, Len = %d", s.NumRanges(), s.Len())
		}
	})
	t.Run("clone is independent", func(t *testing.T) {
		s := ordset.New()
		s.AddRange(0, 10)
		c := s.Clone()
		c.Remove(5)
		s.Remove(2)
		if !s.Contains(5) || c.Contains(5) || !c.Contains(2) || s.Contains(2) {
			t.Fatal("clone shares state with the original")
		}
		s.Clear()
		if s.Len() != 0 || c.Len() != 9 {
			t.Fatalf("after Clear: s.Len = %d, c.Len = %d", s.Len(), c.Len())
		}
	})
}

func ExampleSet() {
	s := ordset.New()
	s.AddRange(10, 20)
	s.Add(20)
	s.Add(25)
	s.Remove(15)
	for lo, hi := range s.Ranges() {
		fmt.Printf("[%d,%d)\n", lo, hi)
	}
	fmt.Println(s.Len(), s.Contains(15), s.NextAbsent(10))
	// Output:
	// [10,15)
	// [16,21)
	// [25,26)
	// 11 false 15
}
