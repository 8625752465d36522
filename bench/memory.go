package bench

// This file measures the memory each implementation holds per in-flight
// offset.

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/inorder/inorder/watermark"
)

// MemoryPartitions is the number of partitions Memory fills for each
// implementation: 1,000 for the watermark (16 MiB); 20 for the baselines,
// whose cost per offset is linear (a B-tree or a heap entry per offset) and
// would take gigabytes and minutes at 1,000 full windows.
func MemoryPartitions(impl string) int {
	if impl == "watermark" {
		return 1000
	}
	return 20
}

// Memory returns the heap bytes per in-flight offset that implementation
// impl holds: HeapAlloc after a GC, before and after building parts
// partitions each filled to a full default window (watermark.DefaultWindow
// offsets, every one tracked and none acked).
func Memory(impl string, parts int) (float64, error) {
	window := watermark.DefaultWindow
	refs := make([]ref, window)
	for i := range refs {
		refs[i].off = int32(i)
	}
	var before, after runtime.MemStats
	runtime.GC() // twice: objects released by the first (finalizers, exiting goroutines) go in the second
	runtime.GC()
	runtime.ReadMemStats(&before)
	im := New(impl, parts, window)
	for p := range parts {
		for i := range refs {
			refs[i].part = int32(p)
		}
		if errs := im.trackAll(0, refs); errs != 0 {
			im.Close()
			return 0, fmt.Errorf("%s memory: %d Track errors", impl, errs)
		}
	}
	im.Sync()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if c := im.Committable(parts - 1); c != 0 {
		im.Close()
		return 0, fmt.Errorf("%s memory: commit point %d with nothing acked", impl, c)
	}
	runtime.KeepAlive(im)
	runtime.KeepAlive(refs) // allocated before the first reading: must not be freed before the second
	im.Close()
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(parts*window), nil
}

// MemoryBench runs Memory for impl once per iteration and reports
// bits/offset and B/offset.
func MemoryBench(b *testing.B, impl string) {
	var bpo float64
	for range b.N {
		var err error
		if bpo, err = Memory(impl, MemoryPartitions(impl)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(bpo*8, "bits/offset")
	b.ReportMetric(bpo, "B/offset")
}
