package metadata

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/inorder/inorder/ordset"
)

// DefaultMaxBytes is the size budget Encode uses for maxBytes == 0: the
// broker's default offset.metadata.max.bytes.
const DefaultMaxBytes = 4096

// deflateMin is the smallest raw body worth trying to deflate: below it the
// DEFLATE block overhead is not won back.
const deflateMin = 48

// deflateRatio bounds the work spent on sets that do not fit: DEFLATE is
// tried only on raw bodies at most this many times the budget. The runs form
// already folds repetitions, so what is left seldom deflates by more; a set
// that would have is cut to a shorter (still exact) prefix.
const deflateRatio = 8

// span is a run of done positions [lo, hi), relative to the commit point.
type span struct{ lo, hi int64 }

// encoder holds the scratch buffers of one Encode; pooled so that an Encode
// allocates only its result.
type encoder struct {
	spans   []span
	runs    []byte
	rice    []byte
	bits    []byte  // rice's bit stream, before its header
	rlens   []int64 // rice's scratch: run lengths
	rgaps   []int64 // and gaps
	noRice  bool    // best skips rice (bestPrefix's search: rice is cut exactly apart)
	bitmap  []byte
	inner   []byte
	zbuf    bytes.Buffer
	payload []byte
	text    []byte
	fw      [2]*flate.Writer // by deflateLevels
	// only restricts best to one DEFLATE variant (level*2+inner form) while
	// bestPrefix searches; -1 tries all. won is the variant best last chose.
	only, won int
}

// deflateLevels are tried on each raw form: LZ77 finds repeated structure
// (runs of similar lengths); Huffman-only codes i.i.d. bytes (the bitmap of a
// random pattern) nearer to their entropy than LZ77 matches do.
var deflateLevels = [2]int{flate.BestCompression, flate.HuffmanOnly}

var encoders = sync.Pool{New: func() any { return &encoder{only: -1} }}

// Encode returns the commit metadata describing the offsets of done at or
// above commit (offsets below commit are ignored: they are committed), in at
// most maxBytes bytes of printable ASCII (0 means DefaultMaxBytes).
//
// It never claims an offset that is not in done. When the whole set does not
// fit, it encodes the longest prefix that fits — every done offset below some
// horizon, nothing above it — and reports complete=false; the caller should
// count that and log it, and commit anyway. If not even one offset fits, or
// nothing above commit is done, meta is "" (which Decode reads as the empty
// set). Sets reaching more than MaxSpan above commit or made of more than
// MaxRanges ranges are cut there too.
//
// Encode is safe for concurrent use (done must not be modified meanwhile).
// It costs O(ranges) plus, when the raw forms exceed a few dozen bytes, one
// or two DEFLATE passes over them; when the set does not fit, a binary
// search of DEFLATE passes over prefixes. It allocates only meta.
// It returns ErrInvalid for a negative commit or maxBytes.
func Encode(commit int64, done *ordset.Set, maxBytes int) (meta string, complete bool, err error) {
	if commit < 0 {
		return "", false, fmt.Errorf("%w: commit point %d is negative", ErrInvalid, commit)
	}
	if maxBytes < 0 {
		return "", false, fmt.Errorf("%w: size budget %d is negative", ErrInvalid, maxBytes)
	}
	if maxBytes == 0 {
		maxBytes = DefaultMaxBytes
	}
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	complete = e.collect(commit, done)
	if len(e.spans) == 0 {
		return "", complete, nil
	}
	budget := maxPayload(maxBytes) - headerLen - trailerLen
	form, body := e.best(e.spans, budget)
	if len(body) > budget {
		complete = false
		form, body = e.bestPrefix(budget)
		if body == nil {
			return "", false, nil
		}
	}
	return e.finish(commit, form, body), complete, nil
}

// collect gathers the done ranges at or above commit as positions relative to
// it, within the format's limits; false if it had to leave some out.
func (e *encoder) collect(commit int64, done *ordset.Set) bool {
	e.spans = e.spans[:0]
	if done == nil {
		return true
	}
	limit := spanLimit(commit)
	for lo, hi := range done.RangesFrom(commit) {
		lo, hi = lo-commit, hi-commit
		if lo >= limit || len(e.spans) == MaxRanges {
			return false
		}
		if hi > limit {
			e.spans = append(e.spans, span{lo, limit})
			return false
		}
		e.spans = append(e.spans, span{lo, hi})
	}
	return true
}

// best returns the smallest body for spans among runs, bitmap and, when they
// are large enough and not too large for budget, their DEFLATE.
func (e *encoder) best(spans []span, budget int) (byte, []byte) {
	e.runs = appendRuns(e.runs[:0], spans)
	form, body := byte(formRuns), e.runs
	end := spans[len(spans)-1].hi
	nbits := (end + 7) / 8
	// Only build the bitmap when it could win, raw or deflated.
	buildBitmap := nbits <= int64(4*len(e.runs)+deflateMin) && nbits < maxInflated
	if buildBitmap {
		e.bitmap = appendBitmap(e.bitmap[:0], spans, int(nbits))
		if len(e.bitmap) < len(body) {
			form, body = formBitmap, e.bitmap
		}
	}
	// Rice codes of the gaps: near the entropy of random holes.
	var rp riceParams
	if !e.noRice {
		rp, e.rlens, e.rgaps = chooseRice(spans, e.rlens, e.rgaps)
	}
	if !e.noRice && rp.bodyLen() < len(body) {
		e.rice, e.bits, _ = appendRice(e.rice[:0], e.bits, spans, rp, -1)
		form, body = formRice, e.rice
	}
	if len(body) < deflateMin || len(body) > deflateRatio*budget {
		return form, body
	}
	e.zbuf.Reset()
	e.won = -1
	for level := range deflateLevels {
		for _, inner := range [2]byte{formRuns, formBitmap} {
			if v := level*2 + int(inner); e.only >= 0 && v != e.only {
				continue
			}
			raw := e.runs
			if inner == formBitmap {
				if !buildBitmap {
					continue
				}
				raw = e.bitmap
			}
			if len(raw) >= maxInflated {
				continue
			}
			if form == formRice && 2*len(raw) > 3*len(body) {
				// Rice codes are within a few percent of the entropy of
				// random gaps; DEFLATE of the raw forms beats them only on
				// repeated structure, which leaves the raw forms less than
				// 1.5 times larger. Spare the pass (most of Encode's time).
				continue
			}
			// Keep the best deflated body at the start of zbuf.
			mark := 0
			if form == formDeflate {
				mark = len(body)
			}
			e.zbuf.Truncate(mark)
			if z := e.deflate(level, inner, raw); len(z) < len(body) {
				e.zbuf.Reset()
				e.zbuf.Write(z) // z aliases zbuf's bytes past the new length: copy is safe (memmove)
				form, body = formDeflate, e.zbuf.Bytes()
				e.won = level*2 + int(inner)
			}
		}
	}
	return form, body
}

// deflate appends to e.zbuf the DEFLATE (at deflateLevels[level]) of the
// inner form byte + raw and returns
// the appended bytes (valid until zbuf is reset).
func (e *encoder) deflate(level int, inner byte, raw []byte) []byte {
	mark := e.zbuf.Len()
	fw := e.fw[level]
	if fw == nil {
		fw, _ = flate.NewWriter(&e.zbuf, deflateLevels[level]) // valid level: no error
		e.fw[level] = fw
	} else {
		fw.Reset(&e.zbuf)
	}
	e.inner = append(append(e.inner[:0], inner), raw...)
	// Writes to a bytes.Buffer do not fail.
	_, _ = fw.Write(e.inner)
	_ = fw.Close()
	return e.zbuf.Bytes()[mark:]
}

// bestPrefix returns the body that fits in budget bytes and describes the
// longest prefix of the spans (nil if none does). Raw forms are cut exactly;
// deflated ones by a binary search over prefixes, stopped within 1/256 of its
// answer; their sizes are not strictly monotonic, so the prefix found fits
// and a slightly longer one may too.
func (e *encoder) bestPrefix(budget int) (byte, []byte) {
	if budget < 1 {
		return 0, nil
	}
	spans := e.spans
	var bestForm byte
	var bestBody []byte
	var bestH int64
	take := func(form byte, body []byte, h int64) {
		if h > bestH || (h == bestH && len(body) < len(bestBody)) {
			bestForm, bestH = form, h
			bestBody = append(bestBody[:0], body...)
		}
	}
	// Raw runs, cut exactly.
	runs, h := appendRunsPrefix(e.runs[:0], spans, budget)
	e.runs = runs
	if h > 0 {
		take(formRuns, runs, h)
	}
	// Rice, with the whole set's parameters, cut exactly.
	var rp riceParams
	rp, e.rlens, e.rgaps = chooseRice(spans, e.rlens, e.rgaps)
	hdr := rp.bodyLen() - (rp.bits+7)/8 // the prefix's header is no longer
	if avail := (budget - hdr) * 8; avail > 0 {
		body, stream, h := appendRice(e.rice[:0], e.bits, spans, rp, avail)
		e.rice, e.bits = body, stream
		if h > 0 {
			take(formRice, body, h)
		}
	}
	// Raw bitmap: the first budget bytes.
	end := spans[len(spans)-1].hi
	if nb := min(int64(budget), (end+7)/8); nb > 0 {
		e.bitmap = appendBitmap(e.bitmap[:0], spans, int(nb))
		bm := trimZeros(e.bitmap)
		if len(bm) > 0 {
			take(formBitmap, bm, min(end, nb*8))
		}
	}
	// Deflated: binary search over the number of whole spans, from the raw
	// horizon up to where the raw runs exceed deflateRatio budgets.
	lo := rangeCount(spans, bestH) // fits (raw)
	hi := lo
	for prev, size := int64(0), 0; hi < len(spans) && size <= deflateRatio*budget; hi++ {
		size += tokenLen(spans[hi].lo-prev, spans[hi].hi-spans[hi].lo, 1)
		prev = spans[hi].hi
	}
	hi = min(hi+1, len(spans)) // the full set does not fit
	// Stop within 1/256 of the answer: each probe costs a DEFLATE pass over
	// as much as deflateRatio budgets.
	// After the first probe, only the DEFLATE variant that won it is tried.
	defer func() { e.only, e.noRice = -1, false }()
	e.noRice = true
	for lo+1 < hi && hi-lo > lo/256 {
		mid := int(uint(lo+hi) / 2)
		f, b := e.best(spans[:mid], budget)
		if e.only < 0 {
			if e.won < 0 {
				break // DEFLATE does not help here
			}
			e.only = e.won
		}
		if len(b) <= budget {
			lo = mid
			take(f, b, spans[mid-1].hi)
		} else {
			hi = mid
		}
	}
	return bestForm, bestBody
}

// rangeCount returns how many spans end at or below h.
func rangeCount(spans []span, h int64) int {
	n := 0
	for n < len(spans) && spans[n].hi <= h {
		n++
	}
	return n
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// finish frames the body and returns the metadata string.
func (e *encoder) finish(commit int64, form byte, body []byte) string {
	v := byte(version1)
	if form == formRice {
		v = version2 // the lowest version that reads the form
	}
	e.payload = append(e.payload[:0], magic0, magic1|v<<2|form)
	e.payload = append(e.payload, body...)
	e.payload = appendTrailer(e.payload, commit)
	n := encodedLen(len(e.payload))
	if cap(e.text) < n {
		e.text = make([]byte, n)
	}
	e.text = e.text[:n]
	base64.RawURLEncoding.Encode(e.text, e.payload)
	return string(e.text)
}

// appendRuns appends the runs body of spans (see format.go).
func appendRuns(b []byte, spans []span) []byte {
	prev := int64(0)
	for i := 0; i < len(spans); {
		gap, d := spans[i].lo-prev, spans[i].hi-spans[i].lo
		r := repeats(spans, i, gap, d)
		b = appendToken(b, gap, d, r)
		prev = spans[i+r-1].hi
		i += r
	}
	return b
}

// repeats counts the spans from i on that have the given gap before them and
// length d.
func repeats(spans []span, i int, gap, d int64) int {
	r := 1
	for i+r < len(spans) && spans[i+r].lo-spans[i+r-1].hi == gap && spans[i+r].hi-spans[i+r].lo == d {
		r++
	}
	return r
}

func tokenHead(gap, d int64, r int) uint64 {
	v := uint64(d-1) << 2
	if gap != 1 {
		v |= 1
	}
	if r > 1 {
		v |= 2
	}
	return v
}

func appendToken(b []byte, gap, d int64, r int) []byte {
	b = binary.AppendUvarint(b, tokenHead(gap, d, r))
	if gap != 1 {
		b = binary.AppendUvarint(b, uint64(gap))
	}
	if r > 1 {
		b = binary.AppendUvarint(b, uint64(r-2))
	}
	return b
}

func tokenLen(gap, d int64, r int) int {
	n := uvarintLen(tokenHead(gap, d, r))
	if gap != 1 {
		n += uvarintLen(uint64(gap))
	}
	if r > 1 {
		n += uvarintLen(uint64(r - 2))
	}
	return n
}

// appendRunsPrefix appends the runs body of the longest prefix of spans that
// fits in budget bytes, cutting a repetition or a run short if need be, and
// returns it with the horizon it describes (0 if nothing fits).
func appendRunsPrefix(b []byte, spans []span, budget int) ([]byte, int64) {
	prev := int64(0)
	for i := 0; i < len(spans); {
		gap, d := spans[i].lo-prev, spans[i].hi-spans[i].lo
		r := repeats(spans, i, gap, d)
		if n := tokenLen(gap, d, r); n <= budget {
			b, budget = appendToken(b, gap, d, r), budget-n
			prev = spans[i+r-1].hi
			i += r
			continue
		}
		if r > 1 { // fewer repetitions
			if r2 := maxRepeats(gap, d, r-1, budget); r2 > 0 {
				b, budget = appendToken(b, gap, d, r2), budget-tokenLen(gap, d, r2)
				prev = spans[i+r2-1].hi
				i += r2
				gap = spans[i].lo - prev
			}
		}
		if d2 := maxRun(gap, d, budget); d2 > 0 { // part of the next run
			b = appendToken(b, gap, d2, 1)
			prev = spans[i].lo + d2
		}
		return b, prev
	}
	return b, prev
}

// maxRepeats returns the largest r <= most such that the token (gap, d, r)
// fits in budget bytes, or 0.
func maxRepeats(gap, d int64, most, budget int) int {
	best := 0
	if tokenLen(gap, d, 1) <= budget {
		best = 1
	}
	base := tokenLen(gap, d, 2) - 1               // without the repeat count's byte
	for l := 1; l <= 4 && base+l <= budget; l++ { // 4 bytes hold more than MaxRanges
		top := int(uint64(1)<<(7*l) - 1 + 2)
		best = max(best, min(most, top))
	}
	return best
}

// maxRun returns the largest d2 <= d such that the token (gap, d2, 1) fits in
// budget bytes, or 0.
func maxRun(gap, d int64, budget int) int64 {
	g := 0
	if gap != 1 {
		g = uvarintLen(uint64(gap))
	}
	best := int64(0)
	for l := 1; l <= 5 && g+l <= budget; l++ { // 5 bytes hold more than MaxSpan
		top := int64(uint64(1)<<(7*l)-1)>>2 + 1
		best = min(d, top)
	}
	return best
}

// appendBitmap appends the bitmap body of spans, n bytes long (spans beyond
// 8n positions are cut).
func appendBitmap(b []byte, spans []span, n int) []byte {
	b = slices.Grow(b, n)[:len(b)+n]
	bits := b[len(b)-n:]
	clear(bits)
	limit := int64(n) * 8
	for _, s := range spans {
		lo, hi := s.lo, min(s.hi, limit)
		if lo >= hi {
			break
		}
		for ; lo < hi && lo&7 != 0; lo++ {
			bits[lo>>3] |= 1 << (lo & 7)
		}
		for ; lo+8 <= hi; lo += 8 {
			bits[lo>>3] = 0xFF
		}
		for ; lo < hi; lo++ {
			bits[lo>>3] |= 1 << (lo & 7)
		}
	}
	return b
}
