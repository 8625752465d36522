package metadata

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"fmt"
	"io"

	codec "github.com/inorder/inorder/watermark/metadata"

	"github.com/inorder/inorder/ordset"
)

// CapacityLimit is the largest window the capacity search tries (offsets
// above the commit point): 2M, 25 default windows, where an alternating
// pattern reaches our codec's MaxRanges.
const CapacityLimit int64 = 1 << 21

// Unbounded is the budget used to measure unconstrained sizes.
const Unbounded = 1 << 22

// Row is one line of the size table.
type Row struct {
	Pattern  Pattern
	Acked    int64  // done offsets above the commit point
	Ours     int    // bytes of our metadata string
	OursForm string // the form Encode chose
	PCBest   int    // bytes of Parallel Consumer's string (its smallest encoding)
	PCBestAs PCEncoding
	PCRLE    int // its best run-length encoding (raw or zstd, v1 or v2)
	PCRLEAs  PCEncoding
	PCBitSet int // its best bitset encoding
	PCBitAs  PCEncoding

	// Acked offsets above a stuck head that fit in 4096 bytes, the pattern
	// continuing as far as needed; AtLimit when CapacityLimit was reached.
	OursCap, PCCap         int64
	OursAtLimit, PCAtLimit bool
}

// Compare computes the sizes of one pattern over its window p.N.
func Compare(p Pattern) (Row, error) {
	done := p.Gen(p.N)
	row := Row{Pattern: p, Acked: done.Len()}
	// Sizes without a budget (Parallel Consumer has none below its 4096
	// limit either); the capacity columns measure the 4096-byte budget.
	meta, complete, err := codec.Encode(Commit, done, Unbounded)
	if err != nil {
		return row, err
	}
	if !complete {
		return row, fmt.Errorf("%s: our encoding does not fit %d bytes", p.Name, Unbounded)
	}
	row.Ours, row.OursForm = len(meta), FormOf(meta)
	pc := PCEncode(Commit, done)
	row.PCBestAs, row.PCBest = pc.Best, pc.Len(pc.Best)
	row.PCRLEAs, row.PCRLE = pc.BestRunLength()
	row.PCBitAs, row.PCBitSet = pc.BestBitSet()
	return row, nil
}

// Capacity fills the capacity columns of row.
func Capacity(row *Row) error {
	gen := row.Pattern.Gen
	// Ours: grow the window until Encode cuts a prefix; its decoded size is
	// the capacity.
	for n := row.Pattern.N; ; n = min(4*n, CapacityLimit) {
		meta, complete, err := codec.Encode(Commit, gen(n), codec.DefaultMaxBytes)
		if err != nil {
			return err
		}
		if complete && n == CapacityLimit {
			row.OursCap, row.OursAtLimit = gen(n).Len(), true
			break
		}
		if !complete {
			s, err := codec.Decode(meta, Commit)
			if err != nil {
				return err
			}
			row.OursCap = s.Len()
			break
		}
	}
	// Parallel Consumer drops a payload over 4096 bytes whole: binary search
	// the largest window whose encoding fits.
	fits := func(n int64) bool {
		r := PCEncode(Commit, gen(n))
		return r == nil || r.Len(r.Best) <= PCMaxMetadataSize
	}
	if fits(CapacityLimit) {
		row.PCCap, row.PCAtLimit = gen(CapacityLimit).Len(), true
		return nil
	}
	lo, hi := int64(1), CapacityLimit
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	row.PCCap = gen(lo).Len()
	return nil
}

// FormOf names the form of one of our metadata strings, read from its header
// (see watermark/metadata/format.go): runs, bitmap, or deflate(runs|bitmap).
func FormOf(meta string) string {
	raw, err := base64.RawURLEncoding.DecodeString(meta)
	if err != nil || len(raw) < 3 {
		return "?"
	}
	names := map[byte]string{0: "runs", 1: "bitmap"}
	if f := raw[1] & 3; f == 2 {
		return map[byte]string{0: "rice(holes)", 1: "rice(runs)"}[raw[2]&3]
	} else if f != 3 {
		return names[f]
	}
	b, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(raw[2:len(raw)-4])), 1))
	if err != nil || len(b) == 0 {
		return "deflate(?)"
	}
	return "deflate(" + names[b[0]] + ")"
}

// Done returns the pattern's done set over its own window.
func (p Pattern) Done() *ordset.Set { return p.Gen(p.N) }
