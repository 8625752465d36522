package ordset_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/inorder/inorder/ordset"
)

// ranges returns the ranges of s as pairs.
func ranges(s *ordset.Set) [][2]int64 {
	var r [][2]int64
	for lo, hi := range s.Ranges() {
		r = append(r, [2]int64{lo, hi})
	}
	return r
}

// TestSliceFormAgainstModel drives sets with the writes the slice form keeps
// (ascending adds, prefix and suffix cuts, clones written on both sides) and
// checks every answer against the model and that the set never left the
// slice form; then one write in the middle moves it to the tree, which must
// answer the same.
func TestSliceFormAgainstModel(t *testing.T) {
	for seed := uint64(0); seed < 40; seed++ {
		r := rand.New(rand.NewPCG(seed, 2))
		s, m := ordset.New(), model{}
		var clone *ordset.Set
		var cm model
		top := int64(0) // every value is below top
		for step := 0; step < 300; step++ {
			switch r.IntN(8) {
			case 0, 1, 2: // past the end, touching it, or overlapping the last range
				lo := top + r.Int64N(4) - 1
				if mx, ok := s.Max(); ok {
					last := mx
					for s.Contains(last - 1) {
						last--
					}
					lo = max(lo, last) // at or above the last range's lo
				}
				hi := lo + r.Int64N(6)
				s.AddRange(lo, hi)
				for v := lo; v < hi; v++ {
					m[v] = true
				}
				top = max(top, hi)
			case 3: // a prefix
				v := r.Int64N(top + 3)
				s.RemoveBelow(v)
				for x := range m {
					if x < v {
						delete(m, x)
					}
				}
			case 4: // a suffix
				v := r.Int64N(top + 3)
				s.RemoveRange(v, math.MaxInt64)
				for x := range m {
					if x >= v {
						delete(m, x)
					}
				}
				top = v
			case 5: // a prefix given as a range starting below the set
				lo, hi := -1-r.Int64N(3), r.Int64N(top+3) // values are >= -1
				s.RemoveRange(lo, hi)
				for v := lo; v < hi; v++ {
					delete(m, v)
				}
			case 6: // a clone, kept and checked while both are written
				clone, cm = s.Clone(), model{}
				for v := range m {
					cm[v] = true
				}
			case 7:
				if r.IntN(8) == 0 {
					s.Clear()
					clear(m)
					top = 0
				} else {
					s.Grow(r.IntN(5))
				}
			}
			m.check(t, s, -3, top+5)
			if !ordset.IsFlat(s) {
				t.Fatalf("seed %d step %d: an ascending write moved the set to the tree", seed, step)
			}
			if clone != nil {
				cm.check(t, clone, -3, top+200)
				if !ordset.IsFlat(clone) {
					t.Fatalf("seed %d step %d: the clone left the slice form", seed, step)
				}
				if step%3 == 0 { // write to the clone too: the original must not see it
					mx, _ := clone.Max()
					clone.AddRange(mx+2, mx+4)
					cm[mx+2], cm[mx+3] = true, true
				}
			}
		}
		// A write in the middle: the tree takes over and agrees.
		if s.NumRanges() >= 1 {
			mn, _ := s.Min()
			mx, _ := s.Max()
			s.AddRange(mx+5, mx+7)
			s.Remove(mx + 5)
			s.Add(mn - 3)
			m[mx+6], m[mn-3] = true, true
			if ordset.IsFlat(s) {
				t.Fatalf("seed %d: a write before the last range kept the slice form", seed)
			}
			m.check(t, s, mn-5, mx+10)
		}
	}
}

// TestUnsortedAndOverlappingRangesAreMerged: AddRange takes ranges in any
// order and overlapping each other (it refuses nothing); the set is their
// union either way. Ascending input, overlapping or touching the last range,
// keeps the slice form; other input moves the set to the tree.
func TestUnsortedAndOverlappingRangesAreMerged(t *testing.T) {
	in := [][2]int64{{10, 20}, {15, 25}, {25, 26}, {24, 30}, {40, 41}, {40, 50}, {60, 61}}
	want := [][2]int64{{10, 30}, {40, 50}, {60, 61}}
	t.Run("ascending with overlaps stays a slice", func(t *testing.T) {
		s := ordset.New()
		for _, r := range in {
			s.AddRange(r[0], r[1])
		}
		if got := ranges(s); !slices.Equal(got, want) || s.Len() != 31 {
			t.Fatalf("ranges %v (len %d), want %v (31)", got, s.Len(), want)
		}
		if !ordset.IsFlat(s) {
			t.Fatal("ascending input left the slice form")
		}
	})
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 3))
		shuffled := slices.Clone(in)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		s := ordset.New()
		for _, x := range shuffled {
			s.AddRange(x[0], x[1])
		}
		if got := ranges(s); !slices.Equal(got, want) || s.Len() != 31 {
			t.Fatalf("order %v: ranges %v (len %d), want %v (31)", shuffled, got, s.Len(), want)
		}
	}
	t.Run("a range below the last moves the set to the tree", func(t *testing.T) {
		s := ordset.New()
		s.AddRange(10, 20)
		s.AddRange(5, 8)
		if ordset.IsFlat(s) {
			t.Fatal("an out-of-order range kept the slice form")
		}
		if got := ranges(s); !slices.Equal(got, [][2]int64{{5, 8}, {10, 20}}) {
			t.Fatalf("ranges %v", got)
		}
	})
}

func TestGrow(t *testing.T) {
	t.Run("appends after Grow do not allocate", func(t *testing.T) {
		s := ordset.New()
		allocs := testing.AllocsPerRun(10, func() {
			s.Clear()
			s.Grow(1000)
			for i := range int64(1000) {
				s.AddRange(2*i, 2*i+1)
			}
		})
		if allocs != 0 {
			t.Fatalf("%v allocations per 1000 appends after Grow, want 0", allocs)
		}
		if s.NumRanges() != 1000 || s.Len() != 1000 {
			t.Fatalf("NumRanges %d, Len %d", s.NumRanges(), s.Len())
		}
	})
	t.Run("Grow of a clone leaves the other set alone", func(t *testing.T) {
		s := ordset.New()
		s.AddRange(1, 3)
		c := s.Clone()
		c.Grow(10)
		c.AddRange(5, 6)
		s.AddRange(7, 9)
		if got := ranges(s); !slices.Equal(got, [][2]int64{{1, 3}, {7, 9}}) {
			t.Fatalf("original %v", got)
		}
		if got := ranges(c); !slices.Equal(got, [][2]int64{{1, 3}, {5, 6}}) {
			t.Fatalf("clone %v", got)
		}
	})
	t.Run("Grow of nothing or of a tree changes nothing", func(t *testing.T) {
		s := ordset.New()
		s.AddRange(10, 20)
		s.Grow(0)
		s.Grow(-5)
		s.AddRange(0, 5) // to the tree
		s.Grow(100)
		if got := ranges(s); !slices.Equal(got, [][2]int64{{0, 5}, {10, 20}}) || s.Len() != 15 {
			t.Fatalf("ranges %v, len %d", got, s.Len())
		}
	})
}

// TestCloneOfASliceIsIndependent writes each slice-form write to one side of
// a clone and checks the other side does not see it.
func TestCloneOfASliceIsIndependent(t *testing.T) {
	base := [][2]int64{{0, 10}, {20, 30}, {40, 50}}
	writes := map[string]func(*ordset.Set){
		"append":        func(s *ordset.Set) { s.AddRange(60, 70) },
		"extend last":   func(s *ordset.Set) { s.AddRange(45, 55) },
		"cut a prefix":  func(s *ordset.Set) { s.RemoveBelow(25) },
		"cut a suffix":  func(s *ordset.Set) { s.RemoveRange(25, math.MaxInt64) },
		"write inside":  func(s *ordset.Set) { s.Remove(5) },
		"clear":         func(s *ordset.Set) { s.Clear() },
		"clear, append": func(s *ordset.Set) { s.Clear(); s.AddRange(1, 2); s.AddRange(3, 4) },
	}
	for name, write := range writes {
		for _, side := range []string{"original", "clone"} {
			t.Run(name+" to the "+side, func(t *testing.T) {
				s := ordset.New()
				for _, r := range base {
					s.AddRange(r[0], r[1])
				}
				s.RemoveBelow(0) // a shrunk slice shares its array too
				c := s.Clone()
				w, other := s, c
				if side == "clone" {
					w, other = c, s
				}
				write(w)
				write(w) // twice: the second write finds the array already private
				if got := ranges(other); !slices.Equal(got, base) || other.Len() != 30 {
					t.Fatalf("the other set holds %v (len %d), want %v", got, other.Len(), base)
				}
				other.AddRange(80, 90) // and the written one does not see the other's append
				if w.Contains(85) {
					t.Fatal("an append to one side shows in the other")
				}
			})
		}
	}
}

func TestZeroSetIsUsable(t *testing.T) {
	var s ordset.Set
	s.AddRange(3, 5)
	s.Add(1)
	if got := ranges(&s); !slices.Equal(got, [][2]int64{{1, 2}, {3, 5}}) || s.Len() != 3 {
		t.Fatalf("ranges %v, len %d", got, s.Len())
	}
}

func TestRemovingNothingKeepsTheSlice(t *testing.T) {
	s := ordset.New()
	s.AddRange(0, 10)
	s.AddRange(20, 30)
	s.AddRange(40, 50)
	s.RemoveRange(10, 20) // the first gap, exactly
	s.RemoveRange(32, 38) // inside the second
	s.Remove(15)
	if !ordset.IsFlat(s) || s.Len() != 30 || s.NumRanges() != 3 {
		t.Fatalf("flat %v, len %d, ranges %d", ordset.IsFlat(s), s.Len(), s.NumRanges())
	}
	s.RemoveRange(29, 41) // the end of one range, the start of the next
	if got := ranges(s); !slices.Equal(got, [][2]int64{{0, 10}, {20, 29}, {41, 50}}) {
		t.Fatalf("ranges %v", got)
	}
}
