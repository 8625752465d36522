// Package ordset is an ordered set of int64 values held as disjoint, coalesced
// half-open ranges [lo, hi).
//
// It is the ordered set of the original acknowledger design, used here where
// a sparse set must be kept compactly: offsets restored from commit metadata,
// snapshots of the acked offsets above a commit point, and the reference model
// of the tests. Memory is O(ranges), not O(values): a million consecutive
// values cost one range.
//
// Two forms hold the ranges. A set written only in ascending order — each
// AddRange at or past the start of its last range, each RemoveRange cutting a
// prefix or a suffix — keeps them in a sorted slice: that is how decoders,
// snapshots and restored sets are built and consumed, and a slice costs a
// fraction of a tree to build and to read. The first write that lands
// elsewhere moves the ranges into a B-tree (github.com/google/btree), once;
// Clear returns the set to the slice form.
//
// Cost: Contains, Min, Max, NextAbsent, Len and NumRanges are O(log r) or
// O(1) in the number of ranges r. In the slice form, an AddRange at the end
// is amortized O(1) and a RemoveRange of a prefix or suffix O(log r + k) for
// the k ranges it deletes; in the tree form, Add, Remove, AddRange and
// RemoveRange are O(log r) plus O(k log r) for the k ranges an operation
// merges or deletes. The move to the tree costs O(r log r), once.
//
// A Set is not safe for concurrent mutation: writes (Clone included) must not
// run concurrently with anything else, but reads (Contains, Min, Max, Len,
// NumRanges, Ranges, RangesFrom, NextAbsent) may run concurrently with each
// other. The zero Set is an empty set, ready to use.
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
// its two forms, costs and the concurrency contract.
type Set struct {
	// t holds the ranges in the tree form; nil in the slice form.
	t *btree.BTreeG[span]
	// flat holds the ranges in the slice form: ascending, disjoint, and
	// coalesced (each hi < the next lo).
	flat []span
	// shared: flat's array is also another set's (Clone): copy it before
	// writing to it or appending.
	shared bool
	n      int64 // number of values
}

// New returns an empty set.
func New() *Set { return &Set{} }

// Len returns the number of values in the set.
func (s *Set) Len() int64 { return s.n }

// NumRanges returns the number of disjoint ranges that hold the values.
func (s *Set) NumRanges() int {
	if s.t != nil {
		return s.t.Len()
	}
	return len(s.flat)
}

// Clear removes every value. The set returns to the slice form, keeping its
// slice's capacity unless a clone shares it.
func (s *Set) Clear() {
	s.t = nil
	if s.shared {
		s.flat, s.shared = nil, false
	}
	s.flat = s.flat[:0]
	s.n = 0
}

// Clone returns an independent copy of s (copy-on-write: O(1) now, the cost
// is paid lazily by later writes to either set).
func (s *Set) Clone() *Set {
	if s.t != nil {
		return &Set{t: s.t.Clone(), n: s.n}
	}
	if len(s.flat) == 0 {
		return &Set{}
	}
	s.shared = true
	return &Set{flat: s.flat, shared: true, n: s.n}
}

// Grow makes room for n more ranges in the slice form, so that the next n
// AddRange calls past the end of the set do not reallocate: a decoder that
// knows how many ranges it will add calls it first. It does nothing in the
// tree form or for n <= 0; n is a hint, not a limit, so the caller bounds it
// (it allocates 16 bytes per range).
func (s *Set) Grow(n int) {
	if s.t != nil || n <= 0 || cap(s.flat)-len(s.flat) >= n && !s.shared {
		return
	}
	f := make([]span, len(s.flat), len(s.flat)+n)
	copy(f, s.flat)
	s.flat, s.shared = f, false
}

// own makes flat writable: a private copy if a clone shares it.
func (s *Set) own() {
	if s.shared {
		s.flat = append(make([]span, 0, len(s.flat)+len(s.flat)/4+1), s.flat...)
		s.shared = false
	}
}

// toTree moves the ranges from the slice into a new tree.
func (s *Set) toTree() {
	t := btree.NewG(degree, less)
	for _, x := range s.flat {
		t.ReplaceOrInsert(x)
	}
	s.t, s.flat, s.shared = t, nil, false
}

// search returns how many ranges of f start at or below v.
func search(f []span, v int64) int {
	i, j := 0, len(f)
	for i < j {
		m := int(uint(i+j) >> 1)
		if f[m].lo <= v {
			i = m + 1
		} else {
			j = m
		}
	}
	return i
}

// floor returns the range with the largest lo <= v, if any.
func (s *Set) floor(v int64) (span, bool) {
	if s.t == nil {
		if i := search(s.flat, v); i > 0 {
			return s.flat[i-1], true
		}
		return span{}, false
	}
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
// Ranges that touch or overlap are coalesced into one. Adding in ascending
// order (each lo at or above the lo of the set's last range) keeps the slice
// form: amortized O(1) per call.
func (s *Set) AddRange(lo, hi int64) {
	if hi <= lo {
		return
	}
	if s.t == nil {
		k := len(s.flat)
		if k == 0 || s.flat[k-1].hi < lo { // past every range
			s.own()
			s.flat = append(s.flat, span{lo, hi})
			s.n += hi - lo
			return
		}
		if last := s.flat[k-1]; last.lo <= lo { // touches the last range only
			if hi > last.hi {
				s.own()
				s.flat[k-1].hi = hi
				s.n += hi - last.hi
			}
			return
		}
		s.toTree()
	}
	if m, ok := s.t.Max(); !ok || m.hi < lo {
		// Past every range: nothing to merge.
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
// Removing a prefix or a suffix of the set (RemoveBelow, or [lo, MaxInt64)),
// or nothing, keeps the slice form.
func (s *Set) RemoveRange(lo, hi int64) {
	if hi <= lo {
		return
	}
	if s.t == nil {
		f := s.flat
		if len(f) == 0 || hi <= f[0].lo || lo >= f[len(f)-1].hi {
			return // nothing to remove
		}
		if lo <= f[0].lo {
			s.cutBelow(hi)
			return
		}
		if hi >= f[len(f)-1].hi {
			s.cutFrom(lo)
			return
		}
		if i := search(f, hi-1); f[i-1].hi <= lo {
			return // [lo, hi) lies in a gap (i > 0: f[0].lo < hi)
		}
		s.toTree()
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

// cutBelow removes the values below v from the slice form.
func (s *Set) cutBelow(v int64) {
	f := s.flat
	i := 0 // ranges wholly below v: f[:i]
	for j := len(f); i < j; {
		if m := int(uint(i+j) >> 1); f[m].hi <= v {
			i = m + 1
		} else {
			j = m
		}
	}
	for _, x := range f[:i] {
		s.n -= x.hi - x.lo
	}
	s.flat = f[i:] // dropping a prefix writes nothing to a shared array
	if len(s.flat) > 0 && s.flat[0].lo < v {
		s.own()
		s.n -= v - s.flat[0].lo
		s.flat[0].lo = v
	}
}

// cutFrom removes the values at or above v from the slice form.
func (s *Set) cutFrom(v int64) {
	f := s.flat
	i := search(f, v-1) // ranges starting below v: f[:i]
	for _, x := range f[i:] {
		s.n -= x.hi - x.lo
	}
	s.flat = f[:i] // shorter; a shared array is copied before any append
	if i > 0 && s.flat[i-1].hi > v {
		s.own()
		s.n -= s.flat[i-1].hi - v
		s.flat[i-1].hi = v
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
	if s.t == nil {
		if len(s.flat) == 0 {
			return 0, false
		}
		return s.flat[0].lo, true
	}
	r, ok := s.t.Min()
	return r.lo, ok
}

// Max returns the largest value, or false if the set is empty.
func (s *Set) Max() (int64, bool) {
	if s.t == nil {
		if len(s.flat) == 0 {
			return 0, false
		}
		return s.flat[len(s.flat)-1].hi - 1, true
	}
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
		if s.t == nil {
			for _, x := range s.flat {
				if !yield(x.lo, x.hi) {
					return
				}
			}
			return
		}
		s.t.Ascend(func(x span) bool { return yield(x.lo, x.hi) })
	}
}

// RangesFrom is Ranges restricted to the values >= v; a range that holds v is
// reported from v.
func (s *Set) RangesFrom(v int64) iter.Seq2[int64, int64] {
	return func(yield func(int64, int64) bool) {
		if s.t == nil {
			i := search(s.flat, v)
			if i > 0 && v < s.flat[i-1].hi {
				if !yield(v, s.flat[i-1].hi) {
					return
				}
			}
			for _, x := range s.flat[i:] {
				if !yield(x.lo, x.hi) {
					return
				}
			}
			return
		}
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
