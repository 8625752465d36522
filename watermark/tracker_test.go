package watermark_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/inorder/inorder/watermark"
)

func TestTracker(t *testing.T) {
	tp := watermark.TopicPartition{Topic: "orders", Partition: 3}
	t.Run("assign, look up, revoke", func(t *testing.T) {
		tr := watermark.NewTracker(watermark.WithWindow(100))
		if _, ok := tr.Partition(tp); ok {
			t.Fatal("unassigned partition found")
		}
		p := tr.Assign(tp, 40)
		if got, ok := tr.Partition(tp); !ok || got != p || tr.Len() != 1 {
			t.Fatal("assigned partition not found")
		}
		if p.Window() != 100 || p.Start() != 40 {
			t.Fatalf("options not applied: window %d start %d", p.Window(), p.Start())
		}
		got, ok := tr.Revoke(tp)
		if !ok || got != p || !p.Closed() || tr.Len() != 0 {
			t.Fatal("Revoke did not close and remove the partition")
		}
		if _, ok := tr.Revoke(tp); ok {
			t.Fatal("second Revoke found the partition")
		}
	})
	t.Run("re-assign closes the earlier partition", func(t *testing.T) {
		tr := watermark.NewTracker()
		old := tr.Assign(tp, 0)
		must(t, old.Track(0))
		p := tr.Assign(tp, 0)
		if !old.Closed() || p.Closed() {
			t.Fatal("re-assign did not replace the partition")
		}
		if err := old.Ack(0); !errors.Is(err, watermark.ErrClosed) {
			t.Fatalf("ack to replaced partition = %v", err)
		}
		must(t, p.Track(0))
		wantCommit(t, p, 0)
	})
	t.Run("iteration sees every partition", func(t *testing.T) {
		tr := watermark.NewTracker()
		for i := int32(0); i < 50; i++ {
			tr.Assign(watermark.TopicPartition{Topic: "t", Partition: i}, int64(i))
		}
		seen := map[int32]bool{}
		for tp, p := range tr.All() {
			if p.Start() != int64(tp.Partition) {
				t.Fatalf("%v maps to partition starting at %d", tp, p.Start())
			}
			seen[tp.Partition] = true
		}
		if len(seen) != 50 {
			t.Fatalf("saw %d partitions", len(seen))
		}
	})
	t.Run("acks racing with revoke never move the new assignment", func(t *testing.T) {
		tr := watermark.NewTracker(watermark.WithWindow(64))
		for round := 0; round < 200; round++ {
			p := tr.Assign(tp, 0)
			for o := int64(0); o < 64; o++ {
				must(t, p.Track(o))
			}
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for o := int64(63); o >= 0; o-- {
					_ = p.Ack(o) // late acks may hit the closed partition
				}
			}()
			tr.Revoke(tp)
			next := tr.Assign(tp, 0)
			for o := int64(0); o < 64; o++ {
				must(t, next.Track(o))
			}
			wg.Wait()
			wantCommit(t, next, 0)
			tr.Revoke(tp)
		}
	})
}
