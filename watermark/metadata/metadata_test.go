package metadata_test

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark/metadata"
)

// randomSet returns a set of offsets in [commit, commit+n) where each offset
// is done with probability p, drawn in runs so that both short and long runs occur.
func randomSet(r *rand.Rand, commit, n int64, p float64) *ordset.Set {
	s := ordset.New()
	for i := int64(0); i < n; {
		l := 1 + r.Int64N(1+r.Int64N(64))
		if r.Float64() < p {
			s.AddRange(commit+i, commit+min(i+l, n))
		}
		i += l
	}
	return s
}

func equal(a, b *ordset.Set) bool {
	if a.Len() != b.Len() || a.NumRanges() != b.NumRanges() {
		return false
	}
	next, stop := iterPull(b)
	defer stop()
	for lo, hi := range a.Ranges() {
		l2, h2, ok := next()
		if !ok || l2 != lo || h2 != hi {
			return false
		}
	}
	return true
}

func iterPull(s *ordset.Set) (func() (int64, int64, bool), func()) {
	var rs [][2]int64
	for lo, hi := range s.Ranges() {
		rs = append(rs, [2]int64{lo, hi})
	}
	i := 0
	return func() (int64, int64, bool) {
		if i == len(rs) {
			return 0, 0, false
		}
		i++
		return rs[i-1][0], rs[i-1][1], true
	}, func() {}
}

// above returns the part of s at or above commit.
func above(s *ordset.Set, commit int64) *ordset.Set {
	c := s.Clone()
	c.RemoveBelow(commit)
	return c
}

func mustDecode(t *testing.T, meta string, commit int64) *ordset.Set {
	t.Helper()
	s, err := metadata.Decode(meta, commit)
	if err != nil {
		t.Fatalf("Decode(%.40q, %d): %v", meta, commit, err)
	}
	return s
}

func checkText(t *testing.T, meta string, maxBytes int) {
	t.Helper()
	if len(meta) > maxBytes {
		t.Fatalf("metadata is %d bytes, budget %d", len(meta), maxBytes)
	}
	if meta != "" && !strings.HasPrefix(meta, "io") {
		t.Fatalf("metadata %.20q does not start with io", meta)
	}
	for i := 0; i < len(meta); i++ {
		if c := meta[i]; c < 0x21 || c > 0x7E {
			t.Fatalf("metadata byte %d is %#x, not printable ASCII", i, c)
		}
	}
}

func TestRoundTripRandomSets(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for i := range 200 {
		commit := r.Int64N(1 << 40)
		n := 1 + r.Int64N(1+r.Int64N(200_000))
		p := r.Float64()
		done := randomSet(r, commit-r.Int64N(100), n, p) // some below commit: ignored
		meta, complete, err := metadata.Encode(commit, done, 1<<22)
		if err != nil || !complete {
			t.Fatalf("set %d: Encode: complete=%v err=%v", i, complete, err)
		}
		checkText(t, meta, 1<<22)
		if got, want := mustDecode(t, meta, commit), above(done, commit); !equal(got, want) {
			t.Fatalf("set %d (commit %d, n %d, p %.2f): decoded %d offsets in %d ranges, want %d in %d",
				i, commit, n, p, got.Len(), got.NumRanges(), want.Len(), want.NumRanges())
		}
	}
}

func TestRoundTripShapes(t *testing.T) {
	const c = 5000
	build := func(f func(s *ordset.Set)) *ordset.Set { s := ordset.New(); f(s); return s }
	cases := map[string]*ordset.Set{
		"empty":                        ordset.New(),
		"only below the commit point":  build(func(s *ordset.Set) { s.AddRange(0, c) }),
		"the commit point itself done": build(func(s *ordset.Set) { s.AddRange(c, c+3); s.Add(c + 10) }),
		"stuck head":                   build(func(s *ordset.Set) { s.AddRange(c+1, c+50_001) }),
		"alternating": build(func(s *ordset.Set) {
			for i := int64(1); i < 100_000; i += 2 {
				s.Add(c + i)
			}
		}),
		"period 7 with a break": build(func(s *ordset.Set) {
			for i := int64(1); i < 70_000; i += 7 {
				s.AddRange(c+i, c+i+4)
			}
			s.AddRange(c+80_000, c+80_001)
		}),
		"a run far above": build(func(s *ordset.Set) { s.AddRange(c+1_000_000, c+1_000_005) }),
		"up to MaxSpan":   build(func(s *ordset.Set) { s.Add(c + 1); s.Add(c + metadata.MaxSpan - 1) }),
	}
	for name, done := range cases {
		t.Run(name, func(t *testing.T) {
			meta, complete, err := metadata.Encode(c, done, 0)
			if err != nil || !complete {
				t.Fatalf("Encode: complete=%v err=%v", complete, err)
			}
			checkText(t, meta, metadata.DefaultMaxBytes)
			want := above(done, c)
			if want.Len() == 0 && meta != "" {
				t.Fatalf("nothing done above the commit point, metadata %q", meta)
			}
			if got := mustDecode(t, meta, c); !equal(got, want) {
				t.Fatalf("decoded %d offsets in %d ranges, want %d in %d", got.Len(), got.NumRanges(), want.Len(), want.NumRanges())
			}
		})
	}
}

func TestEncodeCutsAtTheFormatLimits(t *testing.T) {
	t.Run("a set reaching past MaxSpan is cut there", func(t *testing.T) {
		done := ordset.New()
		done.AddRange(11, 11+metadata.MaxSpan+10)
		meta, complete, err := metadata.Encode(10, done, 0)
		if err != nil || complete {
			t.Fatalf("complete=%v err=%v, want an incomplete encoding", complete, err)
		}
		got := mustDecode(t, meta, 10)
		if mx, _ := got.Max(); mx != 10+metadata.MaxSpan-1 || got.Len() != metadata.MaxSpan-1 {
			t.Fatalf("decoded up to %d (%d offsets), want up to %d", mx, got.Len(), 10+metadata.MaxSpan-1)
		}
	})
	t.Run("a commit point near MaxInt64 does not overflow", func(t *testing.T) {
		c := int64(math.MaxInt64 - 100)
		done := ordset.New()
		done.AddRange(c+1, c+50)
		meta, complete, err := metadata.Encode(c, done, 0)
		if err != nil || !complete {
			t.Fatalf("complete=%v err=%v", complete, err)
		}
		if got := mustDecode(t, meta, c); !equal(got, done) {
			t.Fatalf("decoded %d offsets, want %d", got.Len(), done.Len())
		}
	})
}

// TestTruncation: under any budget the metadata fits, and what it decodes to
// is a prefix of the done set: nothing that was not done, no hole left behind.
func TestTruncation(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for i := range 200 {
		commit := r.Int64N(1 << 30)
		done := randomSet(r, commit, 1+r.Int64N(100_000), r.Float64())
		budget := 1 + r.IntN(3000)
		meta, complete, err := metadata.Encode(commit, done, budget)
		if err != nil {
			t.Fatal(err)
		}
		checkText(t, meta, budget)
		got := mustDecode(t, meta, commit)
		if complete {
			if !equal(got, done) {
				t.Fatalf("case %d: complete but decoded %d offsets, want %d", i, got.Len(), done.Len())
			}
			continue
		}
		horizon := commit // every done offset below it must be decoded
		if mx, ok := got.Max(); ok {
			horizon = mx + 1
		}
		want := done.Clone()
		want.RemoveRange(horizon, math.MaxInt64)
		if !equal(got, want) {
			t.Fatalf("case %d (budget %d): decoded %d offsets up to %d, not the prefix of the done set (%d offsets)",
				i, budget, got.Len(), horizon, want.Len())
		}
		if got.Len() == done.Len() {
			t.Fatalf("case %d: incomplete but decoded every offset", i)
		}
	}
}

// TestTruncationKeepsMostOfWhatFits: a budget big enough for a 1%-random
// window of 100,000 offsets keeps as much of a window ten times larger, not a
// sliver (within the 1/256 at which Encode stops searching deflated prefixes).
func TestTruncationKeepsMostOfWhatFits(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	done := ordset.New()
	for i := int64(1); i < 1_000_000; i++ {
		if r.Float64() >= 0.01 {
			done.Add(i)
		}
	}
	small := done.Clone()
	small.RemoveRange(100_000, math.MaxInt64)
	full, _, _ := metadata.Encode(0, small, 1<<22)
	meta, complete, err := metadata.Encode(0, done, len(full))
	if err != nil || complete {
		t.Fatalf("complete=%v err=%v", complete, err)
	}
	if got := mustDecode(t, meta, 0); got.Len() < small.Len()-small.Len()/256 {
		t.Fatalf("kept %d offsets in %d bytes; %d fit in that budget alone", got.Len(), len(full), small.Len())
	}
}

func TestTinyBudgets(t *testing.T) {
	done := ordset.New()
	done.AddRange(101, 200)
	for budget := 1; budget <= 12; budget++ {
		meta, complete, err := metadata.Encode(100, done, budget)
		if err != nil {
			t.Fatal(err)
		}
		checkText(t, meta, budget)
		if complete != (meta != "" && mustDecode(t, meta, 100).Len() == done.Len()) {
			t.Fatalf("budget %d: complete=%v for %q", budget, complete, meta)
		}
	}
}

func TestEncodeRejectsBadArguments(t *testing.T) {
	if _, _, err := metadata.Encode(-1, ordset.New(), 0); !errors.Is(err, metadata.ErrInvalid) {
		t.Fatalf("negative commit: err = %v, want ErrInvalid", err)
	}
	if _, _, err := metadata.Encode(0, ordset.New(), -5); !errors.Is(err, metadata.ErrInvalid) {
		t.Fatalf("negative budget: err = %v, want ErrInvalid", err)
	}
	if meta, complete, err := metadata.Encode(0, nil, 0); meta != "" || !complete || err != nil {
		t.Fatalf("nil set: %q %v %v, want empty, complete", meta, complete, err)
	}
}

// frame builds a metadata string by hand, per the format in format.go, so
// that the tests can write what Encode never would.
func frame(commit int64, hdr1 byte, body []byte) string {
	p := append([]byte{0x8A, hdr1}, body...)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], uint64(commit))
	tab := crc32.MakeTable(crc32.Castagnoli)
	crc := crc32.Update(crc32.Update(0, tab, c[:]), tab, p)
	p = append(p, byte(commit), byte(crc>>24), byte(crc>>16), byte(crc>>8))
	return base64.RawURLEncoding.EncodeToString(p)
}

const (
	hdrRuns    = 0x80 | 1<<2 // form 0
	hdrBitmap  = 0x80 | 1<<2 | 1
	hdrDeflate = 0x80 | 1<<2 | 3
	hdrRice    = 0x80 | 2<<2 | 2 // version 2
)

func deflateBytes(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestDecodeBadInput(t *testing.T) {
	const c = 1234
	done := ordset.New()
	done.AddRange(c+1, c+100)
	good, _, _ := metadata.Encode(c, done, 0)
	flip := func(s string, i int) string {
		raw, _ := base64.RawURLEncoding.DecodeString(s)
		raw[i] ^= 0x40
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	uv := func(vs ...uint64) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.AppendUvarint(b, v)
		}
		return b
	}
	cases := []struct {
		name   string
		meta   string
		commit int64
		want   error
		alt    error // also accepted: a cut or a flip can move the trailer's commit tag
	}{
		{"another client's metadata", "some-other-client", c, metadata.ErrForeign, nil},
		{"Parallel Consumer's metadata", "ZQAAAAEAAMNQ", c, metadata.ErrForeign, nil},
		{"JSON", `{"owner":"x"}`, c, metadata.ErrForeign, nil},
		{"one character", "i", c, metadata.ErrForeign, nil},
		{"wrong magic", "xo" + good[2:], c, metadata.ErrForeign, nil},
		{"bad base64", "io!!not*base64", c, metadata.ErrCorrupt, nil},
		{"impossible base64 length", good[:5], c, metadata.ErrCorrupt, nil},
		{"too short", "ioAB", c, metadata.ErrCorrupt, nil},
		{"a flipped body byte", flip(good, 3), c, metadata.ErrCorrupt, nil},
		{"a flipped checksum byte", flip(good, len(good)*3/4-1), c, metadata.ErrCorrupt, nil},
		{"truncated payload", good[:len(good)-3], c, metadata.ErrCorrupt, metadata.ErrMismatch},
		{"another commit point (low byte differs)", good, c + 1, metadata.ErrMismatch, nil},
		{"another commit point (low byte equal)", good, c + 256, metadata.ErrCorrupt, nil},
		{"a newer version", frame(c, 0x80|3<<2, []byte{1, 2, 3}), c, metadata.ErrVersion, nil},
		{"version 0", frame(c, 0x80, []byte{1}), c, metadata.ErrVersion, nil},
		{"the rice form in version 1", frame(c, 0x80|1<<2|2, []byte{1}), c, metadata.ErrCorrupt, nil},
		{"rice: empty body", frame(c, hdrRice, nil), c, metadata.ErrCorrupt, nil},
		{"rice: unknown kind", frame(c, hdrRice, []byte{2 | 3<<2, 0, 0}), c, metadata.ErrCorrupt, nil},
		{"rice: parameter out of range", frame(c, hdrRice, []byte{31 << 2, 1, 5, 0}), c, metadata.ErrCorrupt, nil},
		{"rice: count past the stream", frame(c, hdrRice, []byte{0, 9, 100, 0}), c, metadata.ErrCorrupt, nil},
		{"rice: end past MaxSpan", frame(c, hdrRice, append([]byte{0, 0}, uv(1<<31)...)), c, metadata.ErrCorrupt, nil},
		{"rice: hole past the end", frame(c, hdrRice, []byte{0, 1, 3, 0x07}), c, metadata.ErrCorrupt, nil},
		{"rice: stream cut short", frame(c, hdrRice, []byte{1, 0, 2, 0, 0xFF}), c, metadata.ErrCorrupt, nil},
		{"rice: runs past MaxSpan", frame(c, hdrRice, append(append([]byte{1, 0, 1}, uv(uint64(metadata.MaxSpan))...), 0)), c, metadata.ErrCorrupt, nil},
		{"rice: trailing bytes", frame(c, hdrRice, []byte{0, 1, 3, 0x00, 0x00}), c, metadata.ErrCorrupt, nil},
		{"rice inside deflate", frame(c, hdrDeflate, deflateBytes([]byte{2, 0, 0, 0})), c, metadata.ErrCorrupt, nil},
		{"bad varint", frame(c, hdrRuns, []byte{0xFF, 0xFF}), c, metadata.ErrCorrupt, nil},
		{"varint overflow", frame(c, hdrRuns, bytes.Repeat([]byte{0xFF}, 11)), c, metadata.ErrCorrupt, nil},
		{"run longer than MaxSpan", frame(c, hdrRuns, uv(uint64(metadata.MaxSpan)<<2)), c, metadata.ErrCorrupt, nil},
		{"gap longer than MaxSpan", frame(c, hdrRuns, uv(1, 1<<40)), c, metadata.ErrCorrupt, nil},
		{"runs adding up past MaxSpan", frame(c, hdrRuns, uv(uint64(metadata.MaxSpan/2)<<2, uint64(metadata.MaxSpan/2)<<2)), c, metadata.ErrCorrupt, nil},
		{"absurd repeat count", frame(c, hdrRuns, uv(2, 1<<40)), c, metadata.ErrCorrupt, nil},
		{"repeats past MaxRanges", frame(c, hdrRuns, uv(2, metadata.MaxRanges)), c, metadata.ErrCorrupt, nil},
		{"repeats past MaxSpan", frame(c, hdrRuns, uv(2000<<2|2, metadata.MaxRanges-2)), c, metadata.ErrCorrupt, nil},
		{"empty gap between runs", frame(c, hdrRuns, uv(0, 1, 0)), c, metadata.ErrCorrupt, nil},
		{"deflate that is not DEFLATE", frame(c, hdrDeflate, []byte{0xFF, 0xFF, 0xFF}), c, metadata.ErrCorrupt, nil},
		{"deflate bomb", frame(c, hdrDeflate, deflateBytes(make([]byte, 3<<20))), c, metadata.ErrCorrupt, nil},
		{"empty deflate", frame(c, hdrDeflate, deflateBytes(nil)), c, metadata.ErrCorrupt, nil},
		{"deflate inside deflate", frame(c, hdrDeflate, deflateBytes([]byte{3, 0})), c, metadata.ErrCorrupt, nil},
		{"bitmap past MaxRanges", frame(c, hdrDeflate, deflateBytes(append([]byte{1}, bytes.Repeat([]byte{0x55}, 1<<21-1)...))), c, metadata.ErrCorrupt, nil},
		{"negative commit point", good, -1, metadata.ErrInvalid, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := metadata.Decode(tc.meta, tc.commit)
			if !errors.Is(err, tc.want) && (tc.alt == nil || !errors.Is(err, tc.alt)) {
				t.Fatalf("Decode(%.40q) error = %v, want %v", tc.meta, err, tc.want)
			}
			if s != nil {
				t.Fatalf("Decode returned a set (%d offsets) with the error", s.Len())
			}
			if !strings.HasPrefix(err.Error(), "metadata: ") {
				t.Fatalf("error %q is not prefixed with the package name", err)
			}
		})
	}
}

func TestDecodeHandBuiltForms(t *testing.T) {
	const c = 77
	want := ordset.New()
	want.AddRange(c, c+2)     // gap 0 at the start: the commit point itself
	want.AddRange(c+5, c+6)   // gap 3
	want.AddRange(c+7, c+8)   // gap 1, repeated
	want.AddRange(c+9, c+10)  //
	want.AddRange(c+20, c+23) // gap 10, length 3
	runs := frame(c, hdrRuns, []byte{1<<2 | 1, 0, 0<<2 | 1, 3, 0<<2 | 2, 0, 2<<2 | 1, 10})
	if got := mustDecode(t, runs, c); !equal(got, want) {
		t.Fatalf("runs: decoded %d offsets in %d ranges", got.Len(), got.NumRanges())
	}
	bm := []byte{0b00000011, 0b00000010, 0b00000010, 0b00000000, 0b01110000, 0b00000000}
	want2 := ordset.New()
	want2.AddRange(c, c+2)
	want2.Add(c + 9)
	want2.Add(c + 17)
	want2.AddRange(c+36, c+39)
	if got := mustDecode(t, frame(c, hdrBitmap, bm), c); !equal(got, want2) {
		t.Fatalf("bitmap: decoded %d offsets in %d ranges", got.Len(), got.NumRanges())
	}
	if got := mustDecode(t, frame(c, hdrDeflate, deflateBytes(append([]byte{1}, bm...))), c); !equal(got, want2) {
		t.Fatalf("deflated bitmap: decoded %d offsets in %d ranges", got.Len(), got.NumRanges())
	}
	// Rice, holes: parameter 0, 2 holes, end 6; codes 0 ("0") and 2 ("110"),
	// least significant bit first.
	want3 := ordset.New()
	want3.AddRange(c+1, c+3)
	want3.AddRange(c+4, c+6)
	if got := mustDecode(t, frame(c, hdrRice, []byte{0, 2, 6, 0b0110}), c); !equal(got, want3) {
		t.Fatalf("rice holes: decoded %d offsets in %d ranges", got.Len(), got.NumRanges())
	}
	// Rice, runs: run parameter 1, gap parameter 0, 2 runs, first gap 2;
	// run 3 ("1" "0" "0"), gap 1 ("0"), run 1 ("0" "0").
	want4 := ordset.New()
	want4.AddRange(c+2, c+5)
	want4.Add(c + 6)
	if got := mustDecode(t, frame(c, hdrRice, []byte{1 | 1<<2, 0, 2, 2, 0b000001}), c); !equal(got, want4) {
		t.Fatalf("rice runs: decoded %d offsets in %d ranges", got.Len(), got.NumRanges())
	}
}

func TestDecodeBelow(t *testing.T) {
	done := ordset.New()
	done.AddRange(11, 30)
	meta, _, _ := metadata.Encode(10, done, 0)
	s, err := metadata.DecodeBelow(meta, 10, 20)
	if err != nil {
		t.Fatal(err)
	}
	if mx, _ := s.Max(); mx != 19 || s.Len() != 9 {
		t.Fatalf("DecodeBelow kept up to %d (%d offsets), want up to 19", mx, s.Len())
	}
	if _, err := metadata.DecodeBelow("junk", 10, 20); !errors.Is(err, metadata.ErrForeign) {
		t.Fatalf("DecodeBelow(junk) err = %v", err)
	}
}

func TestEncodeAllocations(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	done := randomSet(r, 0, 100_000, 0.9)
	metadata.Encode(0, done, 0) // warm the pool
	want, _, _ := metadata.Encode(0, done, 0)
	allocs := testing.AllocsPerRun(50, func() {
		if got, _, _ := metadata.Encode(0, done, 0); got != want {
			t.Fatal("Encode is not deterministic")
		}
	})
	if allocs > 3 && !raceEnabled {
		t.Fatalf("Encode allocates %.1f times per call, want at most 3 (the string and the range iterator)", allocs)
	}
}

// TestVersion1StringsStillDecode: strings written by the version 1 encoder
// (before the rice form) decode to the sets they were written for.
func TestVersion1StringsStillDecode(t *testing.T) {
	const c = 5000
	r := rand.New(rand.NewPCG(3, 4))
	for i, tc := range []struct {
		p    float64
		meta string
	}{
		{0.01, "ioS0A1TQBXiMAqAFoAKMArgFAIQBsAKEBIACwAFw0AE0KNgCDGBklAL8BLwC5AOwAYAIoAG4BKQB6AWAAtwBSKwCgAOIL7Jc"}, // deflate(runs)
		{0.3, "ioWQz-vP3_pvfvXy3RuX7z_l3nkX__P8zzniXfv8y3v-_-_F_n6tWfv1_39P_beq3K5H7X7nW-f_XjTWmmDvv3vf-o_fh-7f7P92Xc9c8hnd36748f_vbof-13Tz7VV-v6f5ffhfbpH_f-9s_-1XeN58fW_9f4r7AR_39rnV_P8n9NnaZpLf5d_DWe24-7__959Wt7ordr_v2_n_XYnz3j_bNf6_xf3z-tficsvhsh7yk_vcL_Qnz99_64H16q_ZM1z2lpf3n_n_327_vq_xTjvrb5_0tubm32Fv3eXnm577__b7bq5J-_mZjD577fu93-26__-f7v1131r8fS_9_98t2prn693mp__b97cTdj9q3PV96f1_e3_eebfva-t22WjqPK5_z9fDf9_z7_zn8c-37_5mtP9rn_2L8wT_3j57_f-W7_G-vcL3uOe2Xdl_dcU_n9z1ruX_ff_3mw-yev-6-S-wd3Wd57jx7_-Web_u4_B996fNW_WI1gUk"}, // bitmap
	} {
		want := ordset.New()
		for o := int64(1); o < 3000; o++ {
			if r.Float64() >= tc.p {
				want.Add(c + o)
			}
		}
		if got := mustDecode(t, tc.meta, c); !equal(got, want) {
			t.Errorf("string %d: decoded %d offsets in %d ranges, want %d in %d", i, got.Len(), got.NumRanges(), want.Len(), want.NumRanges())
		}
	}
	want := ordset.New()
	want.AddRange(c+1, c+100)
	want.AddRange(c+102, c+200)
	if got := mustDecode(t, "ioSIA4UDAoggqz0", c); !equal(got, want) { // runs
		t.Errorf("runs: decoded %d offsets in %d ranges", got.Len(), got.NumRanges())
	}
}

// TestRiceNearEntropy: offsets left undone at random, with probability p,
// encode in at most 4% more than the entropy of the set (n·H(p) bits) plus
// the frame, and round-trip.
func TestRiceNearEntropy(t *testing.T) {
	for _, tc := range []struct {
		n int64
		p float64
	}{{100_000, 0.01}, {20_000, 0.1}, {1_000_000, 0.001}, {100_000, 0.03}} {
		r := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.p*1e6)))
		done := ordset.New()
		for o := int64(1); o < tc.n; o++ {
			if r.Float64() >= tc.p {
				done.Add(o)
			}
		}
		meta, complete, err := metadata.Encode(0, done, 1<<22)
		if err != nil || !complete {
			t.Fatalf("n=%d p=%v: Encode: complete=%v err=%v", tc.n, tc.p, complete, err)
		}
		if got := mustDecode(t, meta, 0); !equal(got, done) {
			t.Fatalf("n=%d p=%v: decoded %d offsets, want %d", tc.n, tc.p, got.Len(), done.Len())
		}
		h := -tc.p*math.Log2(tc.p) - (1-tc.p)*math.Log2(1-tc.p)
		bound := float64(tc.n) * h / 6 // base64 characters: 6 bits each
		if limit := bound*1.04 + 24; float64(len(meta)) > limit {
			t.Errorf("n=%d p=%v: %d characters, entropy bound %.0f, want at most %.0f", tc.n, tc.p, len(meta), bound, limit)
		}
		t.Logf("n=%d p=%v: %d characters, %.3fx the entropy bound", tc.n, tc.p, len(meta), float64(len(meta))/bound)
	}
}

// TestVersion2StringsArePinned: the rice strings (both kinds, whole and cut to
// a budget) that the encoder wrote when the rice form was introduced; Encode
// must still write exactly them, and Decode read them back.
func TestVersion2StringsArePinned(t *testing.T) {
	const c = 1000
	holes := ordset.New()
	for o := int64(c + 1); o < 5000; o++ {
		if o%53 != 0 && o%71 != 0 {
			holes.Add(o)
		}
	}
	runs := ordset.New()
	x, lo := uint64(1), int64(c)
	for range 300 { // runs and gaps of pseudo-random lengths
		x = x*6364136223846793005 + 1442695040888963407
		gap, n := int64(x>>33%40)+2, int64(x>>13%500)+1
		runs.AddRange(lo+gap, lo+gap+n)
		lo += gap + n
	}
	for _, tc := range []struct {
		name   string
		set    *ordset.Set
		budget int
		meta   string
	}{
		{"holes", holes, 0, "iooQhAGgH4AdoX1WD-2Rmnfxkh6xddhO5ZEbl-kWHsFtWo7dkZy24Zod0WXczdWRHdbZHh3hXV4dmCM966MLcsRXg-ZEHPnRIrkBR8FmUhwdFZNNcARuksXIH4mTZrDiR-Qi6mf6yBxU-Q4foX1WDy3oOBZn"},
		{"holes cut", holes, 64, "iooQL4YLgB2hfVYP7ZGad_GSHrF12E7lkRuX6RYewW1ajt2RnLbhmh3RJehYA5s"},
		{"runs", runs, 0, "ioohBKwCEIAm4a6K7ZPcVDyyabl2Cmgwbd5Ir1GhOxWlb7LV7m22Qai6ZlZT3PSsAcfWustxSFQqioVHEqaMEqbSkK4TZQV4laboVlhjcWUlrzSgppOxRYsAs0o8gdpilmIY3casybEMZ5XZJs1Mogh9x3iUNiy29zKppuulDiErddBNQBw1VZRnGh86Nb6ynqnt2nGAuAZIK_VeglqYZhJHbGlIsgnAxJvEJYjhBCTNLqiuEukE1uWbp0E0crNmVSgReFEQDbSMvM-yhbWjwO2vqoyA71DqGjeJSUWoLdpLGjYtbxSn6pESElF3MSukA9AJwlG_1OiGndTtqlQt1KayhFQ4KFvXQd9DDy2qM9QxLMcXUEPq0uC1ZBIzFxpBm8agHdPFDHSa90xy6qIRkypkXmmwrRuY3iqJSWGN1J2tngFtrTUZZTgBPOu6DTnJXBQkGsjRdKlVknItUd_IFYtMN0cLpjK72ky3jehBamk-Tr4mTvopqvEiZTGZ5hXVlLAsflIWa6qsqIWww7hrIybWa56EMXC3YiaqShSSuBMkfV1Epu4gx9W62KHTnSQ9d0HXdVATuf7EddFVLBuJdoLaWlkQBRYPofYbGxhmRWHm_GzAm0CT8lDsNLVROcMMQzlZvImawIs2MPMe1-OqohaNNyYrrtOzVO20wQZ4tchdoDOkaSZF7on1WQ-CvguYh7vw3RsxPpTRUWZVI4uae3PYV2ML08hJKLgYybDYBZE07SqetHRi0WDhHPokWOOj-Lo8JnUD6LD9cA"},
		{"runs cut", runs, 64, "ioohBBMQgCbhrortk9xUPLJpuXYKaDBt3kivUaE7FaVvstXubbZBqLpm6PIQdg"},
	} {
		meta, complete, err := metadata.Encode(c, tc.set, tc.budget)
		if err != nil || complete != (tc.budget == 0) {
			t.Fatalf("%s: Encode: complete=%v err=%v", tc.name, complete, err)
		}
		if meta != tc.meta {
			t.Errorf("%s: Encode wrote\n%q\nwant\n%q", tc.name, meta, tc.meta)
		}
		got := mustDecode(t, tc.meta, c)
		if tc.budget == 0 && !equal(got, tc.set) {
			t.Errorf("%s: decoded %d offsets in %d ranges, want %d in %d", tc.name, got.Len(), got.NumRanges(), tc.set.Len(), tc.set.NumRanges())
		}
		for lo, hi := range got.Ranges() { // a cut string claims only done offsets
			for o := lo; o < hi; o++ {
				if !tc.set.Contains(o) {
					t.Fatalf("%s: decoded %d, not done", tc.name, o)
				}
			}
		}
		if tc.budget > 0 && got.Len() == 0 {
			t.Errorf("%s: nothing decoded", tc.name)
		}
	}
}

// TestDecodeRoomIsBoundedByWhatTheStreamHolds: a rice header's count sizes
// the set Decode allocates, but only as far as the ranges it can describe.
// MaxRanges holes in a row (one bit each) then one done offset make one
// range: Decode must not make room for a million.
func TestDecodeRoomIsBoundedByWhatTheStreamHolds(t *testing.T) {
	const c = 10
	n := uint64(metadata.MaxRanges)
	body := append([]byte{0}, binary.AppendUvarint(binary.AppendUvarint(nil, n), n+1)...)
	body = append(body, make([]byte, n/8)...) // n codes of 0 with parameter 0
	meta := frame(c, hdrRice, body)
	decode := func() *ordset.Set { return mustDecode(t, meta, c) }
	decode() // warm the decoder's buffers
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s := decode()
	runtime.ReadMemStats(&after)
	if s.NumRanges() != 1 || !s.Contains(c+int64(n)) || s.Len() != 1 {
		t.Fatalf("decoded %d offsets in %d ranges, want offset %d alone", s.Len(), s.NumRanges(), c+n)
	}
	// The string itself is ~175 KB (base64 decoding may copy it); room for
	// MaxRanges ranges would be 16 MiB.
	if got := after.TotalAlloc - before.TotalAlloc; got > 2<<20 {
		t.Fatalf("Decode allocated %d bytes for one range", got)
	}
}
