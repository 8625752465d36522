package metadata

// This file holds the rice form (format version 2): Golomb-Rice codes of gap
// lengths, with the parameter chosen per set, which come within a few
// percent of the entropy of offsets left undone at random.

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/inorder/inorder/ordset"
)

// The rice body (see format.go for the frame):
//
//	mode byte: kind | k1<<2            (kind 0 holes, 1 runs; k1 < 32)
//	[k2 byte]                          (runs only)
//	uvarint n                          (holes: number of holes; runs: number of done runs)
//	uvarint x                          (holes: end, one past the last done position;
//	                                    runs: the first gap, >= 0)
//	bit stream, least significant bit of each byte first, zero-padded:
//	  holes: n codes; code i is the number of done positions between hole
//	    i-1 and hole i (hole -1 being position -1), with parameter k1.
//	    Every position below end that is not a hole is done.
//	  runs: for each done run i, the gap before it minus 1 (for i > 0, with
//	    parameter k2), then its length minus 1 (parameter k1).
//
// A code of v with parameter k is q = v>>k one bits, a zero bit and the k
// low bits of v; when q >= riceEscape, riceEscape one bits, v's bit length L
// in 5 bits and L bits of v instead (every value is below MaxSpan = 2^30).
const (
	riceHoles  = 0
	riceRuns   = 1
	riceEscape = 24
	riceMaxK   = 30
)

// riceLen returns the bits of the code of v with parameter k.
func riceLen(v uint64, k uint) int {
	if q := v >> k; q < riceEscape {
		return int(q) + 1 + int(k)
	}
	return riceEscape + 5 + bits.Len64(v)
}

// riceParams holds the encoding chosen for a set of spans.
type riceParams struct {
	kind   byte
	k1, k2 uint
	bits   int // bits of the stream
	n      int // holes or runs
	x      int64
}

// bodyLen is the length in bytes of the body.
func (r *riceParams) bodyLen() int {
	n := 1 + uvarintLen(uint64(r.n)) + uvarintLen(uint64(r.x)) + (r.bits+7)/8
	if r.kind == riceRuns {
		n++
	}
	return n
}

// bestK returns the parameter that codes vals (each minus sub) plus zeros
// zero values in the fewest bits, and those bits. It tries the parameters
// around log2 of the mean, where the optimum for a geometric distribution
// lies.
func bestK(vals []int64, sub int64, zeros int) (uint, int) {
	var sum uint64
	for _, v := range vals {
		sum += uint64(v - sub)
	}
	guess := 0
	if count := len(vals) + zeros; count > 0 {
		guess = bits.Len64(sum / uint64(count))
	}
	k0 := max(guess-2, 0) // the optimum is near log2(mean*ln 2)
	// A code that does not escape with k0 does not with k0+1 or k0+2 either:
	// its lengths are its quotients plus 1+k. Sum those in one pass, and the
	// (rare) escaped codes' lengths apart.
	var q [3]uint64
	var total [3]int
	plain := 0
	for _, v := range vals {
		u := uint64(v - sub)
		if q0 := u >> uint(k0); q0 < riceEscape {
			q[0] += q0
			q[1] += q0 >> 1
			q[2] += q0 >> 2
			plain++
			continue
		}
		for j := range total {
			total[j] += riceLen(u, uint(k0+j))
		}
	}
	for j := range total {
		total[j] += int(q[j]) + plain*(1+k0+j)
	}
	bestK, best := uint(0), -1
	for j, t := range total {
		k := k0 + j
		if k > riceMaxK {
			break
		}
		if t += zeros * (k + 1); best < 0 || t < best {
			bestK, best = uint(k), t
		}
	}
	return bestK, best
}

// chooseRice returns the smaller of the two kinds for spans (non-empty);
// runs and gaps are scratch buffers, returned grown.
func chooseRice(spans []span, runs, gaps []int64) (riceParams, []int64, []int64) {
	runs, gaps = runs[:0], gaps[:0]
	zeros, holes := int(spans[0].lo), int(spans[0].lo)
	for i, s := range spans {
		runs = append(runs, s.hi-s.lo)
		if i > 0 {
			g := s.lo - spans[i-1].hi
			gaps = append(gaps, g)
			zeros += int(g) - 1
			holes += int(g)
		}
	}
	// holes: the first hole run is zeros only; then each later hole run
	// codes the done run before it, then zeros for its other holes.
	k, b := bestK(runs[:len(runs)-1], 0, zeros)
	hp := riceParams{kind: riceHoles, k1: k, bits: b, n: holes, x: spans[len(spans)-1].hi}
	// runs: each run's length minus 1, each later gap minus 1.
	kd, bd := bestK(runs, 1, 0)
	kg, bg := bestK(gaps, 1, 0)
	rp := riceParams{kind: riceRuns, k1: kd, k2: kg, bits: bd + bg, n: len(spans), x: spans[0].lo}
	if rp.bodyLen() < hp.bodyLen() {
		return rp, runs, gaps
	}
	return hp, runs, gaps
}

// bitWriter appends bits to a byte slice, least significant first, four
// bytes at a time.
type bitWriter struct {
	b   []byte
	acc uint64
	n   uint // bits in acc, < 32 between calls
}

// write appends the n <= 32 low bits of v.
func (w *bitWriter) write(v uint64, n uint) {
	w.acc |= (v & (1<<n - 1)) << w.n
	if w.n += n; w.n >= 32 {
		w.b = binary.LittleEndian.AppendUint32(w.b, uint32(w.acc))
		w.acc >>= 32
		w.n -= 32
	}
}

func (w *bitWriter) ones(n int) {
	for ; n >= 32; n -= 32 {
		w.write(1<<32-1, 32)
	}
	w.write(1<<uint(n)-1, uint(n))
}

func (w *bitWriter) rice(v uint64, k uint) {
	if q := v >> k; q < riceEscape {
		if l := uint(q) + 1 + k; l <= 32 { // the whole code in one write
			w.write(1<<q-1|(v&(1<<k-1))<<(q+1), l)
			return
		}
		w.ones(int(q))
		w.write(0, 1)
		w.write(v, k)
		return
	}
	w.ones(riceEscape)
	l := uint(bits.Len64(v))
	w.write(uint64(l), 5)
	w.write(v, l)
}

// flush appends the bits left, zero-padded to a whole byte, and returns the
// bytes.
func (w *bitWriter) flush() []byte {
	for ; w.n > 0; w.n -= min(w.n, 8) {
		w.b = append(w.b, byte(w.acc))
		w.acc >>= 8
	}
	w.acc = 0
	return w.b
}

// appendRice appends the rice body of spans with parameters r to b, writing
// the bit stream in scratch first. If maxBits >= 0, it stops before the
// stream would exceed maxBits; the header then counts what it wrote. It
// returns the body, scratch (grown) and the horizon the body describes:
// positions below it are exact, none above is claimed.
func appendRice(b, scratch []byte, spans []span, r riceParams, maxBits int) ([]byte, []byte, int64) {
	cut := maxBits >= 0
	// The stream first, into scratch: the header holds its counts.
	w := bitWriter{b: scratch[:0]}
	if !cut { // the whole set, without the budget's bookkeeping
		switch r.kind {
		case riceHoles:
			for i, s := range spans {
				if i == 0 {
					for range s.lo {
						w.rice(0, r.k1)
					}
					continue
				}
				w.rice(uint64(spans[i-1].hi-spans[i-1].lo), r.k1)
				for range s.lo - spans[i-1].hi - 1 {
					w.rice(0, r.k1)
				}
			}
		case riceRuns:
			for i, s := range spans {
				if i > 0 {
					w.rice(uint64(s.lo-spans[i-1].hi-1), r.k2)
				}
				w.rice(uint64(s.hi-s.lo-1), r.k1)
			}
		}
		return appendRiceHeader(b, w.flush(), r.kind, r.k1, r.k2, r.n, r.x), w.b, spans[len(spans)-1].hi
	}
	used := 0
	n, x, horizon := 0, r.x, spans[len(spans)-1].hi
	fits := func(l int) bool { return !cut || used+l <= maxBits }
	put := func(v uint64, k uint) { used += riceLen(v, k); w.rice(v, k) }
	switch r.kind {
	case riceHoles:
		prev := int64(-1)
	holes:
		for i, s := range spans {
			lo := int64(0)
			if i > 0 {
				lo = spans[i-1].hi
			}
			for h := lo; h < s.lo; h++ {
				v := uint64(h - prev - 1)
				if !fits(riceLen(v, r.k1)) {
					horizon = h // positions below h are exact: done but for the holes coded
					break holes
				}
				put(v, r.k1)
				prev = h
				n++
			}
		}
		x = horizon
	case riceRuns:
		prev := spans[0].lo
		for i, s := range spans {
			gl := 0
			if i > 0 {
				gl = riceLen(uint64(s.lo-prev-1), r.k2)
			}
			d := s.hi - s.lo
			if !fits(gl + riceLen(uint64(d-1), r.k1)) {
				// Part of this run, if some fits.
				horizon = prev
				if i > 0 && cut && fits(gl+1+int(r.k1)) {
					lo, hi := int64(1), d // the longest part that fits: in [lo, hi)
					for lo+1 < hi {
						if mid := (lo + hi) / 2; fits(gl + riceLen(uint64(mid-1), r.k1)) {
							lo = mid
						} else {
							hi = mid
						}
					}
					put(uint64(s.lo-prev-1), r.k2)
					put(uint64(lo-1), r.k1)
					n++
					horizon = s.lo + lo
				} else if i == 0 && fits(1+int(r.k1)) {
					lo, hi := int64(1), d
					for lo+1 < hi {
						if mid := (lo + hi) / 2; fits(riceLen(uint64(mid-1), r.k1)) {
							lo = mid
						} else {
							hi = mid
						}
					}
					put(uint64(lo-1), r.k1)
					n++
					horizon = s.lo + lo
				}
				break
			}
			if i > 0 {
				put(uint64(s.lo-prev-1), r.k2)
			}
			put(uint64(d-1), r.k1)
			prev = s.hi
			n++
		}
	}
	stream := w.flush()
	return appendRiceHeader(b, stream, r.kind, r.k1, r.k2, n, x), stream, horizon
}

// appendRiceHeader appends the header and then the stream.
func appendRiceHeader(b, stream []byte, kind byte, k1, k2 uint, n int, x int64) []byte {
	b = append(b, kind|byte(k1)<<2)
	if kind == riceRuns {
		b = append(b, byte(k2))
	}
	b = binary.AppendUvarint(b, uint64(n))
	b = binary.AppendUvarint(b, uint64(x))
	return append(b, stream...)
}

// bitReader reads what bitWriter wrote; reading past the end is an error.
// acc holds the next n unread bits, bits above them zero.
type bitReader struct {
	b   []byte
	i   int // next byte to load into acc
	acc uint64
	n   uint
}

func (r *bitReader) fill() {
	for r.n <= 56 && r.i < len(r.b) {
		r.acc |= uint64(r.b[r.i]) << r.n
		r.i++
		r.n += 8
	}
}

// consumed returns the number of bits read.
func (r *bitReader) consumed() int { return r.i*8 - int(r.n) }

// read returns the next n <= 32 bits.
func (r *bitReader) read(n uint) (uint64, bool) {
	if r.n < n {
		if r.fill(); r.n < n {
			return 0, false
		}
	}
	v := r.acc & (1<<n - 1)
	r.acc >>= n
	r.n -= n
	return v, true
}

func (r *bitReader) rice(k uint) (uint64, bool) {
	q := uint(0)
	for {
		if r.n == 0 {
			if r.fill(); r.n == 0 {
				return 0, false
			}
		}
		t := uint(bits.TrailingZeros64(^r.acc)) // ones; <= n, as the bits above n are zero
		if q+t >= riceEscape {
			t = riceEscape - q
			r.acc >>= t
			r.n -= t
			l, ok := r.read(5)
			if !ok {
				return 0, false
			}
			return r.read(uint(l))
		}
		q += t
		if t < r.n { // the terminating zero is here
			r.acc >>= t + 1
			r.n -= t + 1
			break
		}
		r.acc, r.n = 0, 0
	}
	low, ok := r.read(k)
	return uint64(q)<<k | low, ok
}

// decodeRice adds the offsets of a rice body to s.
func decodeRice(s *ordset.Set, commit, limit int64, b []byte) error {
	bad := func(what string) error { return fmt.Errorf("%w: rice: %s", ErrCorrupt, what) }
	if len(b) < 1 {
		return bad("empty body")
	}
	kind, k1 := b[0]&3, uint(b[0]>>2)
	b = b[1:]
	var k2 uint
	switch kind {
	case riceHoles:
	case riceRuns:
		if len(b) < 1 {
			return bad("no second parameter")
		}
		k2, b = uint(b[0]), b[1:]
	default:
		return bad("unknown kind")
	}
	if k1 > riceMaxK || k2 > riceMaxK {
		return bad("parameter out of range")
	}
	n, l := binary.Uvarint(b)
	if l <= 0 {
		return bad("bad count")
	}
	b = b[l:]
	x, l := binary.Uvarint(b)
	if l <= 0 || x > uint64(limit) {
		return bad("bad length")
	}
	b = b[l:]
	// Every code takes at least one bit: a count beyond the stream is corrupt
	// (this bounds the work before any is done).
	if n > uint64(len(b))*8 || n > MaxRanges {
		return bad("count past the stream")
	}
	// Room for the ranges, once: n (runs), or at most n+1 and at most the
	// end's positions that are not holes (holes). At most MaxRanges, and 16
	// bytes per bit of the stream.
	grow := n
	if kind == riceHoles {
		grow = min(n+1, x-min(x, n))
	}
	s.Grow(int(min(grow, MaxRanges)))
	r := bitReader{b: b}
	switch kind {
	case riceHoles:
		end := int64(x)
		lo := int64(0) // start of the current done run
		prev := int64(-1)
		for range n {
			v, ok := r.rice(k1)
			if !ok || v >= uint64(end) {
				return bad("hole past the end")
			}
			h := prev + 1 + int64(v)
			if h >= end {
				return bad("hole past the end")
			}
			if h > lo {
				s.AddRange(commit+lo, commit+h)
			}
			lo, prev = h+1, h
		}
		if lo < end {
			s.AddRange(commit+lo, commit+end)
		}
	case riceRuns:
		pos := int64(x)
		for i := range n {
			if i > 0 {
				g, ok := r.rice(k2)
				if !ok || g >= uint64(limit) {
					return bad("bad gap")
				}
				pos += int64(g) + 1
			}
			d, ok := r.rice(k1)
			if !ok || d >= uint64(limit) {
				return bad("bad run")
			}
			if pos+int64(d)+1 > limit {
				return bad("runs past the limit")
			}
			s.AddRange(commit+pos, commit+pos+int64(d)+1)
			pos += int64(d) + 1
		}
	}
	if (r.consumed()+7)/8 != len(b) {
		return bad("trailing bytes")
	}
	return nil
}
