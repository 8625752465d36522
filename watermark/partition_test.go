package watermark_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("got error %v, want %v", got, want)
	}
}

func wantCommit(t *testing.T, p *watermark.Partition, want int64) {
	t.Helper()
	if got := p.Committable(); got != want {
		t.Fatalf("Committable() = %d, want %d", got, want)
	}
}

func TestPartitionBasics(t *testing.T) {
	t.Run("out-of-order acks commit only the contiguous prefix", func(t *testing.T) {
		p := watermark.NewPartition(100)
		for o := int64(100); o < 110; o++ {
			must(t, p.Track(o))
		}
		wantCommit(t, p, 100)
		for _, o := range []int64{105, 109, 101, 103} {
			must(t, p.Ack(o))
		}
		wantCommit(t, p, 100)
		must(t, p.Ack(100))
		wantCommit(t, p, 102)
		must(t, p.Ack(102))
		wantCommit(t, p, 104)
		for _, o := range []int64{104, 106, 107, 108} {
			must(t, p.Ack(o))
		}
		wantCommit(t, p, 110)
		if p.Pending() != 0 {
			t.Fatalf("Pending = %d", p.Pending())
		}
	})
	t.Run("gaps between tracked offsets count as done", func(t *testing.T) {
		p := watermark.NewPartition(0)
		must(t, p.Track(0))
		must(t, p.Track(5))    // 1..4 are gaps
		must(t, p.Track(1000)) // 6..999 are gaps, across many words
		must(t, p.Ack(0))
		wantCommit(t, p, 5)
		must(t, p.Ack(5))
		wantCommit(t, p, 1000)
		must(t, p.Ack(3)) // a gap ack is a no-op
		wantCommit(t, p, 1000)
		must(t, p.Ack(1000))
		wantCommit(t, p, 1001)
	})
	t.Run("Skip covers a trailing gap", func(t *testing.T) {
		p := watermark.NewPartition(0)
		must(t, p.Track(0))
		must(t, p.Track(1))
		must(t, p.Ack(0))
		must(t, p.Ack(1))
		wantCommit(t, p, 2)
		must(t, p.Skip(3)) // offset 2 was a transaction marker
		wantCommit(t, p, 3)
		must(t, p.Skip(2)) // below the high mark: no-op
		wantCommit(t, p, 3)
		wantErr(t, p.Track(2), watermark.ErrOutOfOrder)
		must(t, p.Track(3))
		wantCommit(t, p, 3)
	})
	t.Run("Skip behind a pending offset waits for it", func(t *testing.T) {
		p := watermark.NewPartition(0)
		must(t, p.Track(0))
		must(t, p.Skip(10))
		wantCommit(t, p, 0)
		must(t, p.Ack(0))
		wantCommit(t, p, 10)
	})
}

func TestPartitionBadInput(t *testing.T) {
	t.Run("Track not above the last offset is out of order", func(t *testing.T) {
		p := watermark.NewPartition(10)
		wantErr(t, p.Track(9), watermark.ErrOutOfOrder)
		must(t, p.Track(10))
		wantErr(t, p.Track(10), watermark.ErrOutOfOrder)
		wantErr(t, p.Track(3), watermark.ErrOutOfOrder)
		wantCommit(t, p, 10)
	})
	t.Run("ack of an offset never tracked changes nothing", func(t *testing.T) {
		p := watermark.NewPartition(0)
		must(t, p.Track(0))
		must(t, p.Track(1))
		wantErr(t, p.Ack(2), watermark.ErrNotTracked)
		wantErr(t, p.Ack(1<<40), watermark.ErrNotTracked)
		wantErr(t, p.Ack(-1), watermark.ErrNotTracked)
		must(t, p.Ack(0))
		wantCommit(t, p, 1)
		must(t, p.Track(2)) // 2 was acked before it was tracked: must not count
		must(t, p.Ack(1))
		wantCommit(t, p, 2)
	})
	t.Run("duplicate and stale acks are harmless no-ops", func(t *testing.T) {
		p := watermark.NewPartition(50)
		for o := int64(50); o < 60; o++ {
			must(t, p.Track(o))
		}
		must(t, p.Ack(50))
		must(t, p.Ack(50))
		must(t, p.Ack(49)) // before this assignment's start
		must(t, p.Ack(0))
		wantCommit(t, p, 51)
		must(t, p.Ack(52))
		must(t, p.Ack(52))
		wantCommit(t, p, 51)
		if p.Pending() != 8 {
			t.Fatalf("Pending = %d, want 8", p.Pending())
		}
	})
	t.Run("a window that is full is back-pressure, not growth", func(t *testing.T) {
		p := watermark.NewPartition(0, watermark.WithWindow(100))
		must(t, p.Track(0))
		must(t, p.Track(99))
		wantErr(t, p.Track(100), watermark.ErrWindowFull)
		wantErr(t, p.Skip(101), watermark.ErrWindowFull)
		if p.High() != 100 {
			t.Fatalf("High = %d after refused Track", p.High())
		}
		must(t, p.Ack(0))
		must(t, p.Track(100)) // room again
		wantCommit(t, p, 99)
	})
	t.Run("after Close everything but the commit point is refused", func(t *testing.T) {
		p := watermark.NewPartition(0)
		must(t, p.Track(0))
		must(t, p.Track(1))
		must(t, p.Ack(0))
		p.Close()
		p.Close() // idempotent
		wantErr(t, p.Ack(1), watermark.ErrClosed)
		wantErr(t, p.Track(2), watermark.ErrClosed)
		wantErr(t, p.Skip(5), watermark.ErrClosed)
		wantErr(t, p.Restore(ordset.New()), watermark.ErrClosed)
		wantCommit(t, p, 1)
		if !p.Closed() {
			t.Fatal("Closed() = false")
		}
	})
	t.Run("invalid construction panics with the reason", func(t *testing.T) {
		for name, f := range map[string]func(){
			"negative start": func() { watermark.NewPartition(-1) },
			"zero window":    func() { watermark.NewPartition(0, watermark.WithWindow(0)) },
			"huge window":    func() { watermark.NewPartition(0, watermark.WithWindow(watermark.MaxWindow+1)) },
			"tracker window": func() { watermark.NewTracker(watermark.WithWindow(-5)) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s: no panic", name)
					}
				}()
				f()
			}()
		}
		if watermark.CheckWindow(0) == nil || watermark.CheckWindow(1) != nil {
			t.Fatal("CheckWindow disagrees with WithWindow")
		}
	})
}

// TestPartitionWrap drives the ring around many laps and replays late acks
// from earlier laps: none may mark an offset of the current lap done.
func TestPartitionWrap(t *testing.T) {
	for _, window := range []int{1, 2, 39, 40, 41, 80, 100, 1000} {
		p := watermark.NewPartition(0, watermark.WithWindow(window))
		w := int64(window)
		var next int64
		for lap := 0; lap < 200; lap++ {
			lo := next
			for ; next < lo+w; next++ {
				must(t, p.Track(next))
			}
			// Late duplicates of every earlier offset that shares a slot.
			for o := lo - 1; o >= 0 && o >= lo-3*w-100; o-- {
				must(t, p.Ack(o))
			}
			wantCommit(t, p, lo)
			for o := next - 1; o > lo; o-- {
				must(t, p.Ack(o))
			}
			wantCommit(t, p, lo)
			must(t, p.Ack(lo))
			wantCommit(t, p, next)
		}
	}
}

func TestPartitionJumpsOverLongGap(t *testing.T) {
	p := watermark.NewPartition(0, watermark.WithWindow(64))
	must(t, p.Track(0))
	wantErr(t, p.Track(1_000_000), watermark.ErrWindowFull) // 0 still in flight
	must(t, p.Ack(0))
	must(t, p.Track(1_000_000))
	wantCommit(t, p, 1_000_000)
	wantErr(t, p.Ack(999_999), nil) // a gap
	wantErr(t, p.Ack(1_000_001), watermark.ErrNotTracked)
	must(t, p.Ack(1_000_000))
	wantCommit(t, p, 1_000_001)
	must(t, p.Skip(5_000_000_000))
	wantCommit(t, p, 5_000_000_000)
	must(t, p.Track(5_000_000_017))
	wantCommit(t, p, 5_000_000_017)
	must(t, p.Ack(5_000_000_017))
	// A jump to an offset in the middle of a word, then the next offsets in
	// that word: the word must have been initialised for its lap.
	must(t, p.Skip(7_000_000_013))
	for o := int64(7_000_000_013); o < 7_000_000_020; o++ {
		must(t, p.Track(o))
	}
	wantCommit(t, p, 7_000_000_013)
	for o := int64(7_000_000_019); o > 7_000_000_013; o-- {
		must(t, p.Ack(o))
	}
	wantCommit(t, p, 7_000_000_013)
	must(t, p.Ack(7_000_000_013))
	wantCommit(t, p, 7_000_000_020)
}

func TestPartitionRestore(t *testing.T) {
	done := ordset.New()
	done.AddRange(3, 6)
	done.Add(8)
	done.Add(1) // below start: ignored
	p := watermark.NewPartition(2)
	must(t, p.Restore(done))
	var handed []int64
	for o := int64(2); o < 10; o++ {
		switch err := p.Track(o); {
		case errors.Is(err, watermark.ErrRestored):
		case err == nil:
			handed = append(handed, o)
		default:
			t.Fatal(err)
		}
	}
	if want := []int64{2, 6, 7, 9}; !equal(handed, want) {
		t.Fatalf("handed %v to the handler, want %v", handed, want)
	}
	wantCommit(t, p, 2)
	must(t, p.Ack(2))
	wantCommit(t, p, 6)
	wantErr(t, p.Restore(done), watermark.ErrOutOfOrder)
}

func TestPartitionSnapshot(t *testing.T) {
	done := ordset.New()
	done.AddRange(200, 210)
	p := watermark.NewPartition(0, watermark.WithWindow(1000))
	must(t, p.Restore(done))
	for o := int64(0); o < 100; o++ {
		if o%10 == 9 {
			continue // gaps
		}
		must(t, p.Track(o))
	}
	for o := int64(1); o < 100; o++ {
		if o%3 == 0 || o%10 == 9 {
			continue
		}
		must(t, p.Ack(o))
	}
	snap := ordset.New()
	commit := p.Snapshot(snap)
	if commit != 0 {
		t.Fatalf("commit = %d", commit)
	}
	for o := int64(0); o < 300; o++ {
		want := (o < 99 && o > 0 && (o%3 != 0 || o%10 == 9)) || (o >= 200 && o < 210)
		if snap.Contains(o) != want {
			t.Fatalf("snapshot says %d done = %v, want %v", o, snap.Contains(o), want)
		}
	}
}

func TestPartitionWaiting(t *testing.T) {
	t.Run("TrackWait blocks until the head is acked", func(t *testing.T) {
		p := watermark.NewPartition(0, watermark.WithWindow(10))
		for o := int64(0); o < 10; o++ {
			must(t, p.Track(o))
		}
		errc := make(chan error, 1)
		go func() { errc <- p.TrackWait(context.Background(), 10) }()
		for o := int64(9); o >= 1; o-- { // none of these make room
			must(t, p.Ack(o))
		}
		select {
		case err := <-errc:
			t.Fatalf("TrackWait returned %v before the head was acked", err)
		case <-time.After(20 * time.Millisecond):
		}
		must(t, p.Ack(0))
		select {
		case err := <-errc:
			must(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("TrackWait hung")
		}
	})
	t.Run("waits end with the context or Close", func(t *testing.T) {
		p := watermark.NewPartition(0, watermark.WithWindow(1))
		must(t, p.Track(0))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		wantErr(t, p.TrackWait(ctx, 1), context.Canceled)
		wantErr(t, p.Drain(ctx), context.Canceled)
		errc := make(chan error, 2)
		go func() { errc <- p.Drain(context.Background()) }()
		go func() { errc <- p.WaitRoom(context.Background(), 5) }()
		time.Sleep(5 * time.Millisecond)
		p.Close()
		for i := 0; i < 2; i++ {
			select {
			case err := <-errc:
				wantErr(t, err, watermark.ErrClosed)
			case <-time.After(10 * time.Second):
				t.Fatal("wait hung after Close")
			}
		}
	})
	t.Run("Drain returns once everything is acked", func(t *testing.T) {
		p := watermark.NewPartition(0)
		for o := int64(0); o < 500; o++ {
			must(t, p.Track(o))
		}
		errc := make(chan error, 3)
		for i := 0; i < 3; i++ {
			go func() { errc <- p.Drain(context.Background()) }()
		}
		for o := int64(499); o >= 0; o-- {
			must(t, p.Ack(o))
		}
		for i := 0; i < 3; i++ {
			select {
			case err := <-errc:
				must(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("Drain hung")
			}
		}
	})
}

func TestPartitionStats(t *testing.T) {
	p := watermark.NewPartition(7, watermark.WithWindow(500))
	must(t, p.Track(7))
	must(t, p.Track(8))
	must(t, p.Ack(8))
	s := p.Stats()
	if s.Committable != 7 || s.High != 9 || s.Pending != 1 || s.Window != 500 {
		t.Fatalf("Stats = %+v", s)
	}
	time.Sleep(2 * time.Millisecond)
	if s := p.Stats(); s.Stuck <= 0 {
		t.Fatalf("Stuck = %v while offset 7 holds the commit point", s.Stuck)
	}
	must(t, p.Ack(7))
	if s := p.Stats(); s.Stuck != 0 || s.Pending != 0 || s.Committable != 9 {
		t.Fatalf("Stats after drain = %+v", s)
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	p := watermark.NewPartition(0, watermark.WithWindow(1<<20))
	var next int64
	if n := testing.AllocsPerRun(1000, func() { _ = p.Track(next); next++ }); n != 0 {
		t.Errorf("Track allocates %v times per call", n)
	}
	var ack int64
	if n := testing.AllocsPerRun(1000, func() { _ = p.Ack(ack); ack++ }); n != 0 {
		t.Errorf("Ack allocates %v times per call", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = p.Committable() }); n != 0 {
		t.Errorf("Committable allocates %v times per call", n)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
