package metadata

import (
	"encoding/base64"
	"hash/crc32"
	"math"
)

// The format, versions 1 and 2. The metadata string is the unpadded
// base64url (RFC 4648 §5) encoding of
//
//	header(2) body trailer(4)
//
//	header[0] = 0x8A, header[1] = 0x80 | version<<2 | form
//	  The fixed 12 bits make every string start with "io"; version (2 bits) is
//	  the lowest that reads the form: 1 for runs, bitmap and deflate, 2 for
//	  rice (so that readers of version 1 read every string but rice ones,
//	  and report those as a newer version);
//	  form (2 bits): 0 runs, 1 bitmap, 2 rice (version 2), 3 deflate.
//	trailer = commit&0xFF, then the high 3 bytes (big-endian) of
//	  CRC-32C(commit as 8 bytes big-endian || header || body).
//	  Every version keeps this trailer: a reader checks it before it looks at the
//	  version, so garbage is never taken for a newer version.
//
// Positions are relative to the commit point c: position p is offset c+p.
//
//	runs: a sequence of tokens, each describing r >= 1 repetitions of the pair
//	  (gap not-done offsets, then d >= 1 done offsets), from position 0:
//	    uvarint((d-1)<<2 | R<<1 | G)  [uvarint(gap) if G]  [uvarint(r-2) if R]
//	  G=0 means gap = 1 (the common case: one unacked offset, such as the head
//	  at c itself); R=0 means r = 1. Only the first pair may have gap 0.
//	bitmap: bit i (least significant first, byte i/8, bit i%8) set when
//	  position i is done.
//	deflate: raw DEFLATE (RFC 1951) of one byte (the inner form, runs or
//	  bitmap) followed by that form's body.
//	rice: Golomb-Rice codes of the positions of the offsets not done, or of
//	  the lengths of the done and not-done runs (see rice.go).
//
// Offsets after the last done run are unknown, not "not done": a prefix cut
// (when the set does not fit the budget) simply ends the body early.
const (
	version1 = 1
	version2 = 2 // adds the rice form

	formRuns    = 0
	formBitmap  = 1
	formRice    = 2 // version 2 only
	formDeflate = 3

	magic0     = 0x8A
	magic1     = 0x80
	headerLen  = 2
	trailerLen = 4
	prefix     = "io" // base64url of the 12 fixed header bits
)

// Decoding limits. A hostile or corrupt string cannot make Decode allocate
// more than these allow; Encode never writes beyond them (it cuts the prefix
// and reports complete=false), so everything it writes decodes.
const (
	// MaxSpan is the largest distance above the commit point an encoding
	// describes: watermark.MaxWindow.
	MaxSpan = 1 << 30
	// MaxRanges is the largest number of done ranges an encoding describes
	// (an alternating window of 2M offsets); decoding that many takes ~40 ms
	// (a 14-character runs string can hold them: 16 MiB of ranges).
	MaxRanges = 1 << 20
	// maxInflated bounds a deflate body once inflated (a bitmap of 16M offsets).
	maxInflated = 1 << 21
	// maxMetaLen bounds the metadata string Decode accepts.
	maxMetaLen = 1 << 22
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is the trailer's CRC: over the commit point and the payload up to
// the trailer, so metadata committed with another offset never checks out.
func checksum(commit int64, payload []byte) uint32 {
	// The commit point's 8 bytes (big-endian) through the table by hand:
	// crc32.Update on a [8]byte would make it escape (an allocation).
	crc := ^uint32(0)
	for sh := 56; sh >= 0; sh -= 8 {
		crc = castagnoli[byte(crc)^byte(uint64(commit)>>sh)] ^ crc>>8
	}
	return crc32.Update(^crc, castagnoli, payload)
}

func appendTrailer(payload []byte, commit int64) []byte {
	crc := checksum(commit, payload)
	return append(payload, byte(commit), byte(crc>>24), byte(crc>>16), byte(crc>>8))
}

// spanLimit is how far above commit an encoding may reach.
func spanLimit(commit int64) int64 {
	return min(MaxSpan, math.MaxInt64-commit)
}

// maxPayload returns the largest payload whose base64url text fits in maxBytes.
func maxPayload(maxBytes int) int {
	n := maxBytes / 4 * 3
	switch maxBytes % 4 {
	case 2:
		n++
	case 3:
		n += 2
	}
	return n
}

// EncodedLen returns the length of the metadata string for a payload of n bytes.
func encodedLen(n int) int { return base64.RawURLEncoding.EncodedLen(n) }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
