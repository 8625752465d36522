// This file reimplements, as a size and speed baseline, the commit-metadata
// encodings of Confluent's Java Parallel Consumer (confluentinc/parallel-consumer,
// package io.confluent.parallelconsumer.offsets). Only the byte formats and the
// choice rule are reproduced, from these sources:
//
//   - OffsetMapCodecManager.java: the metadata string is Base64 (java.util.Base64
//     basic encoder, "=" padding) of the packed bytes; the limit is a hard-coded
//     DefaultMaxMetadataSize = 4096 and a payload over it is dropped whole.
//   - OffsetSimultaneousEncoder.java: every encoder runs over each offset from the
//     base (commit) offset to the highest succeeded offset, inclusive; the smallest
//     result wins; compressed variants are added only when no raw encoding is
//     under LARGE_ENCODED_SIZE_THRESHOLD_BYTES = 200; packEncoding prefixes the
//     one magic byte of the chosen encoding.
//   - OffsetEncoding.java: magic bytes BitSet 'l', BitSetCompressed 'a',
//     RunLength 'n', RunLengthCompressed 'J', BitSetV2 'o', BitSetV2Compressed 's',
//     RunLengthV2 'e', RunLengthV2Compressed 'p'.
//   - BitSetEncoder.java: big-endian length (v1 short, at most Short.MAX_VALUE;
//     v2 int), then java.util.BitSet.toByteArray() (bit i of the range is bit
//     i%8 of byte i/8, trimmed after the last set bit), in a buffer of
//     length-width + ceil(length/8) + 1 bytes (the trailing byte stays zero).
//   - RunLengthEncoder.java: run lengths alternating incomplete/complete, the first
//     run counting incomplete offsets (0 when the base is complete), big-endian
//     v1 shorts (an encoder error if a run exceeds Short.MAX_VALUE) or v2 ints.
//   - OffsetSimpleSerialisation.java / OffsetEncoder.compress: zstd (zstd-jni
//     ZstdOutputStream, default level 3). Here klauspost/compress zstd at
//     SpeedDefault (its level-3 equivalent), streaming, no frame checksum — the
//     frame sizes can differ from zstd-jni's by a few bytes.
package metadata

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/inorder/inorder/ordset"
)

// PCMaxMetadataSize is Parallel Consumer's hard-coded metadata limit
// (OffsetMapCodecManager.DefaultMaxMetadataSize).
const PCMaxMetadataSize = 4096

// pcLargeEncodedSizeThreshold is OffsetSimultaneousEncoder.LARGE_ENCODED_SIZE_THRESHOLD_BYTES.
const pcLargeEncodedSizeThreshold = 200

// PCEncoding names one of Parallel Consumer's encodings.
type PCEncoding byte

// Parallel Consumer's encodings, by their magic byte (OffsetEncoding.java).
const (
	PCBitSet                PCEncoding = 'l'
	PCBitSetCompressed      PCEncoding = 'a'
	PCRunLength             PCEncoding = 'n'
	PCRunLengthCompressed   PCEncoding = 'J'
	PCBitSetV2              PCEncoding = 'o'
	PCBitSetV2Compressed    PCEncoding = 's'
	PCRunLengthV2           PCEncoding = 'e'
	PCRunLengthV2Compressed PCEncoding = 'p'
)

func (e PCEncoding) String() string {
	switch e {
	case PCBitSet:
		return "BitSet"
	case PCBitSetCompressed:
		return "BitSetCompressed"
	case PCRunLength:
		return "RunLength"
	case PCRunLengthCompressed:
		return "RunLengthCompressed"
	case PCBitSetV2:
		return "BitSetV2"
	case PCBitSetV2Compressed:
		return "BitSetV2Compressed"
	case PCRunLengthV2:
		return "RunLengthV2"
	case PCRunLengthV2Compressed:
		return "RunLengthV2Compressed"
	}
	return fmt.Sprintf("PCEncoding(%q)", byte(e))
}

// PCResult is what Parallel Consumer would put in the metadata for one commit:
// each encoding it produced (magic byte + data, before Base64) and the chosen one.
type PCResult struct {
	Encodings map[PCEncoding][]byte // packed: magic byte then data
	Best      PCEncoding
}

// String returns the Base64 metadata string of enc, as Parallel Consumer commits it.
func (r *PCResult) String(enc PCEncoding) string {
	return base64.StdEncoding.EncodeToString(r.Encodings[enc])
}

// Len returns the length in bytes of the Base64 metadata string of enc.
func (r *PCResult) Len(enc PCEncoding) int {
	b, ok := r.Encodings[enc]
	if !ok {
		return -1
	}
	return base64.StdEncoding.EncodedLen(len(b))
}

// BestRunLength and BestBitSet return the smallest encoding of each family
// (raw or compressed, v1 or v2) and its metadata length, for the size table.
func (r *PCResult) BestRunLength() (PCEncoding, int) {
	return r.bestOf(PCRunLength, PCRunLengthV2, PCRunLengthCompressed, PCRunLengthV2Compressed)
}

// BestBitSet: see BestRunLength.
func (r *PCResult) BestBitSet() (PCEncoding, int) {
	return r.bestOf(PCBitSet, PCBitSetV2, PCBitSetCompressed, PCBitSetV2Compressed)
}

func (r *PCResult) bestOf(encs ...PCEncoding) (PCEncoding, int) {
	best, n := PCEncoding(0), -1
	for _, e := range encs {
		if l := r.Len(e); l >= 0 && (n < 0 || l < n) {
			best, n = e, l
		}
	}
	return best, n
}

// PCEncode runs Parallel Consumer's simultaneous encoder over the offsets from
// commit (the lowest incomplete offset) to the highest offset in done,
// inclusive; every offset in that range not in done is incomplete. It returns
// nil when nothing above commit is done (Parallel Consumer then writes an
// empty payload).
func PCEncode(commit int64, done *ordset.Set) *PCResult {
	high, ok := done.Max()
	if !ok || high < commit {
		return nil
	}
	length := high - commit + 1
	if length > math.MaxInt32 {
		return nil // Parallel Consumer cannot encode this either
	}
	// Runs, alternating incomplete/complete, starting with incomplete
	// (RunLengthEncoder.encodeRunLength over every offset in the range).
	var runs []int64
	pos, cur := commit, false
	var count int64
	for lo, hi := range done.RangesFrom(commit) {
		if lo > pos { // incomplete run [pos, lo)
			if cur { // complete run ends
				runs = append(runs, count)
				count, cur = 0, false
			}
			count += lo - pos
		}
		if !cur {
			runs = append(runs, count)
			count, cur = 0, true
		}
		count += hi - lo
		pos = hi
	}
	runs = append(runs, count) // addTail

	res := &PCResult{Encodings: make(map[PCEncoding][]byte, 8)}
	raw := map[PCEncoding][]byte{}
	if length <= math.MaxInt16 {
		raw[PCBitSet] = pcBitSet(commit, length, done, 2)
	}
	raw[PCBitSetV2] = pcBitSet(commit, length, done, 4)
	if b, ok := pcRunLength(runs, 2); ok {
		raw[PCRunLength] = b
	}
	raw[PCRunLengthV2], _ = pcRunLength(runs, 4)

	quiteSmall := false
	for _, b := range raw {
		if len(b) < pcLargeEncodedSizeThreshold {
			quiteSmall = true
		}
	}
	for enc, b := range raw {
		res.Encodings[enc] = pack(enc, b)
		if !quiteSmall {
			res.Encodings[compressedOf[enc]] = pack(compressedOf[enc], pcZstd(b))
		}
	}
	// sortedEncodings orders by data size; ties keep the first inserted, which
	// does not change the size.
	n := -1
	for enc, b := range res.Encodings {
		if n < 0 || len(b) < n || (len(b) == n && enc < res.Best) {
			res.Best, n = enc, len(b)
		}
	}
	return res
}

var compressedOf = map[PCEncoding]PCEncoding{
	PCBitSet: PCBitSetCompressed, PCBitSetV2: PCBitSetV2Compressed,
	PCRunLength: PCRunLengthCompressed, PCRunLengthV2: PCRunLengthV2Compressed,
}

func pack(enc PCEncoding, data []byte) []byte {
	return append([]byte{byte(enc)}, data...)
}

// pcBitSet is BitSetEncoder.serialise: length, BitSet.toByteArray(), in a
// buffer of width + ceil(length/8) + 1 bytes.
func pcBitSet(commit, length int64, done *ordset.Set, width int) []byte {
	buf := make([]byte, width+int((length+7)/8)+1)
	if width == 2 {
		binary.BigEndian.PutUint16(buf, uint16(length))
	} else {
		binary.BigEndian.PutUint32(buf, uint32(length))
	}
	bits := buf[width:]
	for lo, hi := range done.RangesFrom(commit) {
		for i := lo - commit; i < hi-commit; i++ {
			bits[i>>3] |= 1 << (i & 7)
		}
	}
	return buf
}

// pcRunLength is RunLengthEncoder.serialise; false when a v1 run overflows a short.
func pcRunLength(runs []int64, width int) ([]byte, bool) {
	buf := make([]byte, 0, len(runs)*width)
	for _, r := range runs {
		if width == 2 {
			if r > math.MaxInt16 {
				return nil, false
			}
			buf = binary.BigEndian.AppendUint16(buf, uint16(r))
		} else {
			buf = binary.BigEndian.AppendUint32(buf, uint32(r))
		}
	}
	return buf, true
}

var zstdEnc = sync.OnceValue(func() *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(err)
	}
	return e
})

var zstdMu sync.Mutex

// pcZstd compresses b as a zstd stream, like ZstdOutputStream (no content
// size in the frame header, no checksum).
func pcZstd(b []byte) []byte {
	zstdMu.Lock()
	defer zstdMu.Unlock()
	var out bytes.Buffer
	e := zstdEnc()
	e.Reset(&out)
	if _, err := e.Write(b); err != nil {
		panic(err)
	}
	if err := e.Close(); err != nil {
		panic(err)
	}
	return out.Bytes()
}

// PCDecode decodes a Parallel Consumer metadata string back to the complete
// offsets, for the baseline's decode benchmark and its round-trip test
// (EncodedOffsetPair.getDecodedIncompletes, inverted to the complete set).
func PCDecode(meta string, commit int64) (*ordset.Set, error) {
	raw, err := base64.StdEncoding.DecodeString(meta)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return ordset.New(), nil
	}
	enc, data := PCEncoding(raw[0]), raw[1:]
	switch enc {
	case PCBitSetCompressed, PCBitSetV2Compressed, PCRunLengthCompressed, PCRunLengthV2Compressed:
		d, err := zstd.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		var out bytes.Buffer
		if _, err := out.ReadFrom(d); err != nil {
			return nil, err
		}
		data = out.Bytes()
		for k, v := range compressedOf {
			if v == enc {
				enc = k
			}
		}
	}
	s := ordset.New()
	switch enc {
	case PCBitSet, PCBitSetV2:
		width := 2
		if enc == PCBitSetV2 {
			width = 4
		}
		if len(data) < width {
			return nil, fmt.Errorf("pc: bitset too short")
		}
		var length int64
		if width == 2 {
			length = int64(binary.BigEndian.Uint16(data))
		} else {
			length = int64(binary.BigEndian.Uint32(data))
		}
		bits := data[width:]
		for i := int64(0); i < length && i>>3 < int64(len(bits)); i++ {
			if bits[i>>3]&(1<<(i&7)) != 0 {
				s.AddRange(commit+i, commit+i+1)
			}
		}
	case PCRunLength, PCRunLengthV2:
		width := 2
		if enc == PCRunLengthV2 {
			width = 4
		}
		pos, complete := commit, false
		for i := 0; i+width <= len(data); i += width {
			var r int64
			if width == 2 {
				r = int64(int16(binary.BigEndian.Uint16(data[i:])))
			} else {
				r = int64(int32(binary.BigEndian.Uint32(data[i:])))
			}
			if complete {
				s.AddRange(pos, pos+r)
			}
			pos += r
			complete = !complete
		}
	default:
		return nil, fmt.Errorf("pc: unknown magic %q", byte(enc))
	}
	return s, nil
}
