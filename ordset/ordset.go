// Package ordset is an ordered set of int64 values held as disjoint, coalesced
// half-open ranges [lo, hi) in a B-tree (github.com/google/btree).
//
// It is the ordered set of the original acknowledger design, used here where
// a sparse set must be kept compactly: offsets restored from commit metadata,
// snapshots of the acked offsets above a commit point, and the reference model
// of the tests. Memory is O(ranges), not O(values): a million consecutive
// values cost one range.
//
// Cost: Add, Remove, Contains, AddRange and RemoveRange are O(log r) in the
// number of ranges r, plus O(k log r) for the k ranges an operation merges or
// deletes. Min, Max, Len and NumRanges are O(1) or O(log r).
//
// A Set is not safe for concurrent mutation: writes must not run concurrently
// with anything else, but reads (Contains, Min, Max, Len, Ranges, NextAbsent)
// may run concurrently with each other. The zero Set is not usable; use New.
package ordset

import (
	"iter"
	"math"

	"github.com/google/btree"
)

// span is one range [lo, hi) of the set; lo < hi always holds.
type span struct{ lo, hi int64 }

func less(a, b span) bool { return a.lo < b.lo }

// degree is the B-tree degree; 32 keeps nodes a few cache lines wide.
const degree = 32

// Set is an ordered set of int64 values. See the package documentation for
// costs and the concurrency contract.
type Set struct {
	t *btree.BTreeG[span]
	n int64 // number of values
}

// New returns an empty set.
func New() *Set {
	return &Set{t: btree.NewG(degree, less)}
}

// Len returns the number of values in the set.
func (s *Set) Len() int64 { return s.n }

// NumRanges returns the number of disjoint ranges that hold the values.
func (s *Set) NumRanges() int { return s.t.Len() }

// Clear removes every value.
func (s *Set) Clear() {
	s.t.Clear(false)
	s.n = 0
}

// Clone returns an independent copy of s (copy-on-write: O(1) now, the cost
// is paid lazily by later writes to either set).
func (s *Set) Clone() *Set {
	return &Set{t: s.t.Clone(), n: s.n}
}

// floor returns the range with the largest lo <= v, if any.
func (s *Set) floor(v int64) (span, bool) {
	var r span
	ok := false
	s.t.DescendLessOrEqual(span{lo: v}, func(x span) bool {
		r, ok = x, true
		return false
	})
	return r, ok
}

// Contains reports whether v is in the set.
func (s *Set) Contains(v int64) bool {
	r, ok := s.floor(v)
	return ok && v < r.hi
}

// Add adds v and reports whether it was absent.
// Adding math.MaxInt64 is not possible (ranges are half-open) and returns false.
func (s *Set) Add(v int64) bool {
	if v == math.MaxInt64 || s.Contains(v) {
		return false
	}
	s.AddRange(v, v+1)
	return true
}

// AddRange adds every value in [lo, hi). An empty range (hi <= lo) is a no-op.
// Ranges that touch or overlap are coalesced into one.
func (s *Set) AddRange(lo, hi int64) {
	if hi <= lo {
		return
	}
	if m, ok := s.t.Max(); !ok || m.hi < lo {
		// Past every range (how decoders build a set): nothing to merge.
		s.t.ReplaceOrInsert(span{lo, hi})
		s.n += hi - lo
		return
	}
	// Extend to the left over a range that touches or overlaps lo.
	if r, ok := s.floor(lo); ok && r.hi >= lo {
		if r.hi >= hi {
			return // already covered
		}
		lo = r.lo
	}
	// Absorb every range that starts within [lo, hi].
	var absorbed []span
	s.t.AscendGreaterOrEqual(span{lo: lo}, func(x span) bool {
		if x.lo > hi {
			return false
		}
		absorbed = append(absorbed, x)
		return true
	})
	for _, x := range absorbed {
		s.t.Delete(x)
		s.n -= x.hi - x.lo
		if x.hi > hi {
			hi = x.hi
		}
	}
	s.t.ReplaceOrInsert(span{lo, hi})
	s.n += hi - lo
}

// Remove removes v and reports whether it was present.
func (s *Set) Remove(v int64) bool {
	if v == math.MaxInt64 || !s.Contains(v) {
		return false
	}
	s.RemoveRange(v, v+1)
	return true
}

// RemoveRange removes every value in [lo, hi). An empty range is a no-op.
func (s *Set) RemoveRange(lo, hi int64) {
	if hi <= lo {
		return
	}
	var hit []span
	if r, ok := s.floor(lo); ok && r.hi > lo {
		hit = append(hit, r)
	}
	s.t.AscendGreaterOrEqual(span{lo: lo}, func(x span) bool {
		if x.lo >= hi {
			return false
		}
		if len(hit) == 0 || hit[len(hit)-1] != x {
			hit = append(hit, x)
		}
		return true
	})
	for _, x := range hit {
		s.t.Delete(x)
		s.n -= x.hi - x.lo
		if x.lo < lo {
			s.t.ReplaceOrInsert(span{x.lo, lo})
			s.n += lo - x.lo
		}
		if x.hi > hi {
			s.t.ReplaceOrInsert(span{hi, x.hi})
			s.n += x.hi - hi
		}
	}
}

// RemoveBelow removes every value less than v.
func (s *Set) RemoveBelow(v int64) {
	if m, ok := s.Min(); ok && m < v {
		s.RemoveRange(m, v)
	}
}

// Min returns the smallest value, or false if the set is empty.
func (s *Set) Min() (int64, bool) {
	r, ok := s.t.Min()
	return r.lo, ok
}

// Max returns the largest value, or false if the set is empty.
func (s *Set) Max() (int64, bool) {
	r, ok := s.t.Max()
	return r.hi - 1, ok
}

// NextAbsent returns the smallest value >= v that is not in the set.
func (s *Set) NextAbsent(v int64) int64 {
	if r, ok := s.floor(v); ok && v < r.hi {
		return r.hi // ranges are coalesced: r.hi itself is absent
	}
	return v
}

// Ranges returns the ranges of the set in ascending order as (lo, hi) pairs,
// each half-open. The set must not be modified during the iteration.
func (s *Set) Ranges() iter.Seq2[int64, int64] {
	return func(yield func(int64, int64) bool) {
		s.t.Ascend(func(x span) bool { return yield(x.lo, x.hi) })
	}
}

// RangesFrom is Ranges restricted to the values >= v; a range that holds v is
// reported from v.
func (s *Set) RangesFrom(v int64) iter.Seq2[int64, int64] {
	return func(yield func(int64, int64) bool) {
		if r, ok := s.floor(v); ok && v < r.hi {
			if !yield(v, r.hi) {
				return
			}
		}
		s.t.AscendGreaterOrEqual(span{lo: v}, func(x span) bool {
			if x.lo == v { // already reported through floor
				return true
			}
			return yield(x.lo, x.hi)
		})
	}
}
