package metadata_test

import (
	"errors"
	"testing"

	m "github.com/inorder/inorder/bench/metadata"
	"github.com/inorder/inorder/watermark"
	codec "github.com/inorder/inorder/watermark/metadata"
)

// BenchmarkDecodeRestore is what the partition's next owner does with the
// metadata, beyond Decode: drop offsets past the log end, restore the set
// into the partition, track the first 1,000 offsets (each Track consults and
// trims the restored set; restored offsets are skipped) and take one commit
// snapshot. The set's cost must not merely move from Decode to its consumers.
func BenchmarkDecodeRestore(b *testing.B) {
	p := m.Patterns[0] // random-1pct
	done := p.Done()
	meta, _, err := codec.Encode(m.Commit, done, m.Unbounded)
	if err != nil {
		b.Fatal(err)
	}
	snap := done.Clone()
	b.Run("pattern="+p.Name, func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			set, err := codec.DecodeBelow(meta, m.Commit, m.Commit+p.N)
			if err != nil {
				b.Fatal(err)
			}
			part := watermark.NewPartition(m.Commit)
			if err := part.Restore(set); err != nil {
				b.Fatal(err)
			}
			for o := m.Commit; o < m.Commit+1000; o++ {
				if err := part.Track(o); err != nil && !errors.Is(err, watermark.ErrRestored) {
					b.Fatal(err)
				}
			}
			part.Snapshot(snap)
		}
	})
}
