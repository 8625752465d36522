package metadata

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sync"

	"github.com/inorder/inorder/ordset"
)

// decoder holds the scratch buffers of one Decode.
type decoder struct {
	raw []byte
	buf bytes.Buffer
	br  bytes.Reader
	fr  io.ReadCloser
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

// Decode returns the offsets at or above commit that meta marks done; commit
// must be the offset meta was committed with. An empty meta gives an empty
// set. Decode never panics and never returns a set that claims an offset meta
// does not encode; on any error the set is nil:
//
//   - ErrForeign: meta is not ours (another client's metadata, free text);
//   - ErrCorrupt: it looks like ours but does not check out, or exceeds
//     MaxSpan or MaxRanges;
//   - ErrVersion: it is ours, from a newer format version;
//   - ErrMismatch: it was written for another commit point;
//   - ErrInvalid: commit is negative.
//
// The caller logs the error and goes on without the set (at least once).
// Offsets at or past the partition's log end should be dropped by the caller
// (see DecodeBelow). Decode is safe for concurrent use; it costs O(len(meta)
// + ranges), and allocates the set: ordset's slice form, its ranges appended
// in ascending order (a rice body sizes it once, to the most ranges its
// header allows, bounded by MaxRanges and by the stream's bits).
func Decode(meta string, commit int64) (*ordset.Set, error) {
	if commit < 0 {
		return nil, fmt.Errorf("%w: commit point %d is negative", ErrInvalid, commit)
	}
	if meta == "" {
		return ordset.New(), nil
	}
	if len(meta) < len(prefix) || meta[:len(prefix)] != prefix {
		return nil, fmt.Errorf("%w (it does not start with %q)", ErrForeign, prefix)
	}
	if len(meta) > maxMetaLen {
		return nil, fmt.Errorf("%w: %d bytes long, more than %d", ErrCorrupt, len(meta), maxMetaLen)
	}
	d := decoders.Get().(*decoder)
	defer decoders.Put(d)
	n := base64.RawURLEncoding.DecodedLen(len(meta))
	if cap(d.raw) < n {
		d.raw = make([]byte, n)
	}
	n, err := base64.RawURLEncoding.Decode(d.raw[:n], []byte(meta))
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url: %v", ErrCorrupt, err)
	}
	raw := d.raw[:n]
	if len(raw) < headerLen+trailerLen {
		return nil, fmt.Errorf("%w: %d bytes, too short", ErrCorrupt, len(raw))
	}
	payload, tr := raw[:len(raw)-trailerLen], raw[len(raw)-trailerLen:]
	crc := checksum(commit, payload)
	if tr[1] != byte(crc>>24) || tr[2] != byte(crc>>16) || tr[3] != byte(crc>>8) {
		if tr[0] != byte(commit) {
			return nil, fmt.Errorf("%w (commit point %d; or the metadata is corrupt)", ErrMismatch, commit)
		}
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	v := payload[1] >> 2 & 3
	if v != version1 && v != version2 {
		return nil, fmt.Errorf("%w: version %d, this reader knows %d and %d", ErrVersion, v, version1, version2)
	}
	form, body := payload[1]&3, payload[headerLen:]
	if form == formRice && v < version2 {
		return nil, fmt.Errorf("%w: form %d in version %d", ErrCorrupt, form, v)
	}
	if form == formDeflate {
		if body, err = d.inflate(body); err != nil {
			return nil, err
		}
		if len(body) == 0 || body[0] == formDeflate || body[0] == formRice {
			return nil, fmt.Errorf("%w: bad form inside deflate", ErrCorrupt)
		}
		form, body = body[0], body[1:]
	}
	limit := spanLimit(commit)
	s := ordset.New()
	switch form {
	case formRuns:
		err = decodeRuns(s, commit, limit, body)
	case formBitmap:
		err = decodeBitmap(s, commit, limit, body)
	case formRice:
		err = decodeRice(s, commit, limit, body)
	default:
		err = fmt.Errorf("%w: unknown form %d", ErrCorrupt, form)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// DecodeBelow is Decode with the offsets at or above end dropped: end is the
// partition's log end offset, past which nothing can have been done (the log
// was truncated, or the metadata is for another incarnation of the topic).
func DecodeBelow(meta string, commit, end int64) (*ordset.Set, error) {
	s, err := Decode(meta, commit)
	if err == nil {
		s.RemoveRange(end, math.MaxInt64)
	}
	return s, err
}

func (d *decoder) inflate(z []byte) ([]byte, error) {
	d.br.Reset(z)
	if d.fr == nil {
		d.fr = flate.NewReader(&d.br)
	} else if err := d.fr.(flate.Resetter).Reset(&d.br, nil); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	d.buf.Reset()
	n, err := d.buf.ReadFrom(io.LimitReader(d.fr, maxInflated+1))
	if err != nil {
		return nil, fmt.Errorf("%w: deflate: %v", ErrCorrupt, err)
	}
	if n > maxInflated {
		return nil, fmt.Errorf("%w: deflate body inflates past %d bytes", ErrCorrupt, maxInflated)
	}
	return d.buf.Bytes(), nil
}

func decodeRuns(s *ordset.Set, commit, limit int64, b []byte) error {
	var pos int64 // next position after the last run
	ranges := 0
	for len(b) > 0 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("%w: bad varint in runs", ErrCorrupt)
		}
		b = b[n:]
		if v>>2 >= uint64(limit) {
			return fmt.Errorf("%w: run past %d offsets", ErrCorrupt, limit)
		}
		d := int64(v>>2) + 1
		gap := uint64(1)
		if v&1 != 0 {
			if gap, n = binary.Uvarint(b); n <= 0 || gap > uint64(limit) {
				return fmt.Errorf("%w: bad gap in runs", ErrCorrupt)
			}
			b = b[n:]
		}
		r := uint64(1)
		if v&2 != 0 {
			x, n := binary.Uvarint(b)
			if n <= 0 || x > MaxRanges {
				return fmt.Errorf("%w: bad repeat count in runs", ErrCorrupt)
			}
			b, r = b[n:], x+2
		}
		if gap == 0 && (ranges > 0 || r > 1) {
			return fmt.Errorf("%w: empty gap between runs", ErrCorrupt)
		}
		step := int64(gap) + d // both <= limit <= 1<<30: no overflow
		if int64(r) > (limit-pos)/step {
			return fmt.Errorf("%w: runs reach past %d offsets above the commit point", ErrCorrupt, limit)
		}
		if uint64(ranges)+r > MaxRanges {
			return fmt.Errorf("%w: more than %d ranges", ErrCorrupt, MaxRanges)
		}
		for ; r > 0; r-- {
			lo := commit + pos + int64(gap)
			s.AddRange(lo, lo+d)
			pos += step
			ranges++
		}
	}
	return nil
}

func decodeBitmap(s *ordset.Set, commit, limit int64, b []byte) error {
	nbits := int64(len(b)) * 8
	if nbits > limit+7 {
		return fmt.Errorf("%w: bitmap past %d offsets", ErrCorrupt, limit)
	}
	ranges := 0
	for pos := int64(0); ; {
		lo := nextBit(b, pos, false)
		if lo >= nbits {
			return nil
		}
		hi := nextBit(b, lo, true)
		if hi > limit {
			return fmt.Errorf("%w: bitmap past %d offsets", ErrCorrupt, limit)
		}
		if ranges++; ranges > MaxRanges {
			return fmt.Errorf("%w: more than %d ranges", ErrCorrupt, MaxRanges)
		}
		s.AddRange(commit+lo, commit+hi)
		pos = hi
	}
}

// nextBit returns the first position >= pos whose bit is set (or clear, if
// clear is true), or len(b)*8 if there is none.
func nextBit(b []byte, pos int64, clear bool) int64 {
	var flip byte
	if clear {
		flip = 0xFF
	}
	i := pos >> 3
	if i >= int64(len(b)) {
		return int64(len(b)) * 8
	}
	if x := (b[i] ^ flip) >> (pos & 7); x != 0 {
		return pos + int64(bits.TrailingZeros8(x))
	}
	for i++; i < int64(len(b)); i++ {
		if x := b[i] ^ flip; x != 0 {
			return i*8 + int64(bits.TrailingZeros8(x))
		}
	}
	return int64(len(b)) * 8
}
