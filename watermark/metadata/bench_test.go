package metadata_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark/metadata"
)

// random1pct is the first pattern: the head stuck, then 1% of the
// window unacked at random.
func random1pct(window int64) *ordset.Set {
	r := rand.New(rand.NewPCG(1, 1))
	s := ordset.New()
	for i := int64(1); i < window; i++ {
		if r.Float64() >= 0.01 {
			s.Add(i)
		}
	}
	return s
}

// BenchmarkEncode: the cost on every commit of a partition whose window holds
// 100,000 offsets, and of the truncation path when ten times that does not fit.
func BenchmarkEncode(b *testing.B) {
	for _, window := range []int64{100_000, 1_000_000} {
		done := random1pct(window)
		b.Run(fmt.Sprintf("pattern=random-1pct/window=%d/budget=4096", window), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				metadata.Encode(0, done, metadata.DefaultMaxBytes)
			}
		})
	}
	stuck := ordset.New()
	stuck.AddRange(1, 100_000)
	b.Run("pattern=stuck-head/window=100000/budget=4096", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			metadata.Encode(0, stuck, metadata.DefaultMaxBytes)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	done := random1pct(100_000)
	meta, _, _ := metadata.Encode(0, done, metadata.DefaultMaxBytes)
	b.Run("pattern=random-1pct/window=100000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := metadata.Decode(meta, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
