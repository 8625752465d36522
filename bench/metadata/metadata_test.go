package metadata_test

import (
	"fmt"
	"testing"

	m "github.com/inorder/inorder/bench/metadata"
	"github.com/inorder/inorder/ordset"
	codec "github.com/inorder/inorder/watermark/metadata"
)

// TestOursNeverLargerThanParallelConsumer is the issue's size claim: on every
// pattern our metadata is no larger than Parallel Consumer's smallest
// encoding. Sizes are deterministic, so this is a pass/fail assertion.
func TestOursNeverLargerThanParallelConsumer(t *testing.T) {
	for _, p := range m.Patterns {
		t.Run(p.Name, func(t *testing.T) {
			r, err := m.Compare(p)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("ours %d bytes (%s), PC best %d (%v), PC RLE %d, PC bitset %d",
				r.Ours, r.OursForm, r.PCBest, r.PCBestAs, r.PCRLE, r.PCBitSet)
			if r.Ours > r.PCBest {
				t.Fatalf("ours %d bytes > Parallel Consumer's %d (%v)", r.Ours, r.PCBest, r.PCBestAs)
			}
		})
	}
}

// TestCapacityOnTheIssuesPatterns: in 4096 bytes we keep at least as many
// acked offsets above a stuck head as Parallel Consumer on the issue's four
// patterns.
func TestCapacityOnTheIssuesPatterns(t *testing.T) {
	if testing.Short() {
		t.Log("the capacity search takes a few seconds; it runs without -short")
	}
	for _, p := range m.Patterns[:4] {
		t.Run(p.Name, func(t *testing.T) {
			r := m.Row{Pattern: p}
			if err := m.Capacity(&r); err != nil {
				t.Fatal(err)
			}
			t.Logf("ours %d, PC %d", r.OursCap, r.PCCap)
			if r.OursCap < r.PCCap {
				t.Fatalf("ours keeps %d acked offsets in 4096 bytes, Parallel Consumer %d", r.OursCap, r.PCCap)
			}
		})
	}
}

// TestBaselineRoundTrips checks the baseline reimplementation decodes what it
// encodes, so that its sizes are those of a working codec.
func TestBaselineRoundTrips(t *testing.T) {
	for _, p := range m.Patterns {
		done := p.Done()
		pc := m.PCEncode(m.Commit, done)
		for enc := range pc.Encodings {
			got, err := m.PCDecode(pc.String(enc), m.Commit)
			if err != nil {
				t.Fatalf("%s/%v: %v", p.Name, enc, err)
			}
			if got.Len() != done.Len() || got.NumRanges() != done.NumRanges() {
				t.Fatalf("%s/%v: decoded %d offsets in %d ranges, want %d in %d",
					p.Name, enc, got.Len(), got.NumRanges(), done.Len(), done.NumRanges())
			}
		}
	}
}

// TestBaselineFormat pins the baseline to Parallel Consumer's published byte
// layout on a case worked by hand: commit 0, offsets 1 and 2 done.
func TestBaselineFormat(t *testing.T) {
	done := ordset.New()
	done.AddRange(1, 3)
	pc := m.PCEncode(0, done)
	want := map[m.PCEncoding]string{
		m.PCRunLength:   "n\x00\x01\x00\x02",                 // runs 1 incomplete, 2 complete as shorts
		m.PCRunLengthV2: "e\x00\x00\x00\x01\x00\x00\x00\x02", // as ints
		m.PCBitSet:      "l\x00\x03\x06\x00",                 // length 3, bits 0b110, one spare byte
		m.PCBitSetV2:    "o\x00\x00\x00\x03\x06\x00",
	}
	for enc, w := range want {
		if got := string(pc.Encodings[enc]); got != w {
			t.Errorf("%v: %q, want %q", enc, got, w)
		}
	}
	if len(pc.Encodings) != len(want) {
		t.Errorf("%d encodings, want %d (no compression under 200 bytes)", len(pc.Encodings), len(want))
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, p := range m.Patterns {
		done := p.Done()
		b.Run(fmt.Sprintf("pattern=%s/impl=ours", p.Name), func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				meta, _, _ := codec.Encode(m.Commit, done, m.Unbounded)
				n = len(meta)
			}
			b.ReportMetric(float64(n), "bytes")
		})
		b.Run(fmt.Sprintf("pattern=%s/impl=ours-4096", p.Name), func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				meta, _, _ := codec.Encode(m.Commit, done, codec.DefaultMaxBytes)
				n = len(meta)
			}
			b.ReportMetric(float64(n), "bytes")
		})
		b.Run(fmt.Sprintf("pattern=%s/impl=pc", p.Name), func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				r := m.PCEncode(m.Commit, done)
				n = len(r.String(r.Best))
			}
			b.ReportMetric(float64(n), "bytes")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, p := range m.Patterns {
		done := p.Done()
		ours, _, _ := codec.Encode(m.Commit, done, m.Unbounded)
		pc := m.PCEncode(m.Commit, done)
		theirs := pc.String(pc.Best)
		b.Run(fmt.Sprintf("pattern=%s/impl=ours", p.Name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.Decode(ours, m.Commit); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("pattern=%s/impl=pc", p.Name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.PCDecode(theirs, m.Commit); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestIssue14Ratios pins issue 14's size figures: our string against
// Parallel Consumer's best on random holes (deterministic sizes).
func TestIssue14Ratios(t *testing.T) {
	want := map[string]float64{"random-1pct": 0.8, "random-10pct-20k": 0.9, "random-0.1pct-1M": 0.9}
	for _, p := range m.Patterns {
		limit, ok := want[p.Name]
		if !ok {
			continue
		}
		r, err := m.Compare(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := float64(r.Ours) / float64(r.PCBest); got > limit {
			t.Errorf("%s: ours %d characters, %.3fx Parallel Consumer's %d, want at most %.1fx", p.Name, r.Ours, got, r.PCBest, limit)
		}
	}
}
