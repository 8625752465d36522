package adaptertest_test

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

func TestRecorderCountsDistinctAndDuplicates(t *testing.T) {
	r := adaptertest.NewRecorder()
	var wg sync.WaitGroup
	for p := range int32(4) {
		wg.Go(func() {
			for o := range int64(100) {
				r.Add(p, o, []byte{byte(o)})
			}
			r.Add(p, 7, []byte{7}) // one duplicate per partition
		})
	}
	wg.Wait()
	if r.Distinct() != 400 || r.Count() != 404 || r.Dups() != 4 {
		t.Fatalf("distinct %d, count %d, dups %d; want 400, 404, 4", r.Distinct(), r.Count(), r.Dups())
	}
	if r.Times(2, 7) != 2 || r.Times(2, 8) != 1 || r.Times(9, 0) != 0 {
		t.Fatalf("times: %d %d %d, want 2 1 0", r.Times(2, 7), r.Times(2, 8), r.Times(9, 0))
	}
	if v := r.Values()[string([]byte{7})]; v != 8 {
		t.Fatalf("value 7 handled %d times, want 8", v)
	}
	seen := r.Seen()
	seen[adaptertest.PO{P: 0, O: 0}] = 99 // a copy: the recorder is unchanged
	if r.Times(0, 0) != 1 {
		t.Fatal("Seen returned the recorder's own map")
	}
}

func TestReadHandledCountsPerChildAndLost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	for child, offs := range [][]int64{{0, 1, 2}, {2, 3}} {
		l, err := adaptertest.OpenHandledLog(path, []string{"0", "1"}[child])
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range offs {
			if err := l.Write(1, o); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Offsets 0..5 of partition 1 and 0..1 of partition 0 were produced.
	h := adaptertest.ReadHandled(t, path, make([]adaptertest.Coverage, 2), map[int32]int64{0: 2, 1: 6})
	if h.PerChild[0] != 3 || h.PerChild[1] != 2 || h.Distinct != 4 || h.Lost != 4 || len(h.Again) != 0 {
		t.Fatalf("got %+v, want per child [3 2], 4 distinct, 4 lost, none again", h)
	}
}
