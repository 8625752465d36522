// Fuzz targets for the commit-metadata codec (watermark/metadata): random
// sets round-trip exactly (or as a prefix when the budget cuts them), and no
// string decodes to a set it does not encode. Self-contained: every helper
// here is prefixed with metadata.
package fuzz_test

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark/metadata"
)

// metadataSetFromBytes turns fuzz bytes into a commit point and a done set:
// each byte pair is a (not-done gap, done run) of lengths that are usually
// short and sometimes long.
func metadataSetFromBytes(b []byte) (int64, *ordset.Set) {
	var commit int64
	if len(b) >= 4 {
		commit = int64(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	s := ordset.New()
	pos := commit
	for i := 0; i+1 < len(b); i += 2 {
		gap, run := int64(b[i]), int64(b[i+1])
		if gap >= 0xF0 {
			gap = (gap - 0xEF) << 12
		}
		if run >= 0xF0 {
			run = (run - 0xEF) << 12
		}
		pos += gap
		s.AddRange(pos, pos+run)
		pos += run
	}
	return commit, s
}

func metadataEqual(a, b *ordset.Set) bool {
	if a.Len() != b.Len() || a.NumRanges() != b.NumRanges() {
		return false
	}
	for lo, hi := range a.Ranges() {
		if !b.Contains(lo) || b.NextAbsent(lo) != hi {
			return false
		}
	}
	return true
}

func FuzzMetadataRoundTrip(f *testing.F) {
	f.Add([]byte{0x40, 0x42, 0x0F, 0x00, 1, 0xFF}, uint16(0))
	f.Add([]byte{0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, uint16(12))
	f.Add([]byte{7, 0, 0, 0, 0, 5, 3, 0xF5, 0xF1, 2, 1, 1, 9, 200}, uint16(20))
	// Single holes between runs of about a hundred: the rice form's case.
	random := []byte{0, 0, 0, 0, 1, 90}
	for i := 0; i < 60; i++ {
		random = append(random, 1+byte(i%7/6), byte(60+i*37%90))
	}
	f.Add(random, uint16(0))
	f.Add(random, uint16(40)) // a prefix of it
	f.Fuzz(func(t *testing.T, b []byte, budget uint16) {
		commit, done := metadataSetFromBytes(b)
		maxBytes := int(budget % 8193) // 0 is the default budget
		meta, complete, err := metadata.Encode(commit, done, maxBytes)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		if maxBytes == 0 {
			maxBytes = metadata.DefaultMaxBytes
		}
		if len(meta) > maxBytes {
			t.Fatalf("metadata of %d bytes, budget %d", len(meta), maxBytes)
		}
		got, err := metadata.Decode(meta, commit)
		if err != nil {
			t.Fatalf("Decode of Encode's output: %v", err)
		}
		want := done.Clone()
		want.RemoveBelow(commit)
		if !complete {
			// A prefix: everything done below the horizon, nothing above.
			horizon := commit
			if mx, ok := got.Max(); ok {
				horizon = mx + 1
			}
			want.RemoveRange(horizon, math.MaxInt64)
		}
		if !metadataEqual(got, want) {
			t.Fatalf("complete=%v: decoded %d offsets in %d ranges, want %d in %d",
				complete, got.Len(), got.NumRanges(), want.Len(), want.NumRanges())
		}
	})
}

func FuzzMetadataDecode(f *testing.F) {
	done := ordset.New()
	done.AddRange(1001, 1100)
	done.AddRange(1102, 1200)
	for _, s := range []string{"", "io", "ioS8mgzojp-X", "some-other-client", "ZQAAAAEAAMNQ"} {
		f.Add(s, int64(1000))
	}
	if meta, _, err := metadata.Encode(1000, done, 0); err == nil {
		f.Add(meta, int64(1000))
		f.Add(meta, int64(1001))
	}
	// The rice form (version 2): offsets left undone at random, in both kinds.
	holes, runs := ordset.New(), ordset.New()
	for o := int64(1); o < 3000; o++ {
		if (o*7919)%97 != 0 { // about 1% undone
			holes.Add(1000 + o)
		}
		if (o*31)%17 < 9 { // runs of mixed lengths
			runs.Add(1000 + o)
		}
	}
	for _, s := range []*ordset.Set{holes, runs} {
		if meta, _, err := metadata.Encode(1000, s, 0); err == nil {
			f.Add(meta, int64(1000))
		}
		if meta, _, err := metadata.Encode(1000, s, 200); err == nil {
			f.Add(meta, int64(1000)) // a prefix
		}
	}
	f.Fuzz(func(t *testing.T, meta string, commit int64) {
		s, err := metadata.Decode(meta, commit)
		if err != nil {
			if s != nil {
				t.Fatalf("a set with the error %v", err)
			}
			for _, e := range []error{metadata.ErrForeign, metadata.ErrCorrupt, metadata.ErrVersion, metadata.ErrMismatch, metadata.ErrInvalid} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("error %v is none of the package's sentinels", err)
		}
		if lo, ok := s.Min(); ok && lo < commit {
			t.Fatalf("decoded offset %d below the commit point %d", lo, commit)
		}
		if hi, ok := s.Max(); ok && hi-commit >= metadata.MaxSpan {
			t.Fatalf("decoded offset %d past MaxSpan above %d", hi, commit)
		}
		if s.NumRanges() > metadata.MaxRanges {
			t.Fatalf("%d ranges decoded", s.NumRanges())
		}
		// What it decodes re-encodes to metadata that decodes to the same set.
		again, complete, err := metadata.Encode(commit, s, 1<<22)
		if err != nil || !complete {
			t.Fatalf("re-Encode: complete=%v err=%v", complete, err)
		}
		s2, err := metadata.Decode(again, commit)
		if err != nil || !metadataEqual(s, s2) {
			t.Fatalf("re-decode: err=%v", err)
		}
	})
}
