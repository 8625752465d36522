// FuzzPartition: a sequential watermark.Partition program against a model of
// the pending offsets (the same semantics as watermark/model_test.go).
package fuzz_test

import (
	"context"
	"errors"
	"testing"

	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark"
)

// partModel is the plain reference of a Partition: the set of tracked,
// unacked offsets, the high mark, the offsets restored from commit metadata.
type partModel struct {
	pending  map[int64]bool
	restored map[int64]bool
	high     int64
	start    int64
	window   int64
	closed   bool
}

func (m *partModel) commit() int64 {
	c := m.high
	for o := range m.pending {
		c = min(c, o)
	}
	return c
}

// fits reports whether last fits in the window: always when nothing is
// pending (the window then jumps over a gap), else within window of the
// commit point.
func (m *partModel) fits(last int64) bool {
	return len(m.pending) == 0 || last-m.commit() < m.window
}

func (m *partModel) track(o int64) error {
	switch {
	case m.closed:
		return watermark.ErrClosed
	case o < m.high:
		return watermark.ErrOutOfOrder
	case !m.fits(o):
		return watermark.ErrWindowFull
	}
	m.high = o + 1
	if m.restored[o] {
		return watermark.ErrRestored
	}
	m.pending[o] = true
	return nil
}

func (m *partModel) skip(to int64) error {
	switch {
	case m.closed:
		return watermark.ErrClosed
	case to <= m.high:
		return nil
	case !m.fits(to - 1):
		return watermark.ErrWindowFull
	}
	m.high = to
	return nil
}

func (m *partModel) ack(o int64) error {
	switch {
	case m.closed:
		return watermark.ErrClosed
	case o >= m.high || o < 0:
		return watermark.ErrNotTracked
	}
	delete(m.pending, o)
	return nil
}

// sameErr reports whether got is want (both nil, or got wraps want).
func sameErr(got, want error) bool {
	if want == nil {
		return got == nil
	}
	return errors.Is(got, want)
}

// FuzzPartition interprets the input as: window (1 + b%150, small so that
// the ring wraps), start (0..255), then 2-byte instructions (op, arg).
func FuzzPartition(f *testing.F) {
	f.Fuzz(partitionProgram)
}

func partitionProgram(t *testing.T, prog []byte) {
	{
		if len(prog) < 2 {
			return
		}
		if len(prog) > 2+2*600 {
			prog = prog[:2+2*600]
		}
		window := 1 + int64(prog[0]%150)
		start := int64(prog[1])
		p := watermark.NewPartition(start, watermark.WithWindow(int(window)))
		m := &partModel{pending: map[int64]bool{}, restored: map[int64]bool{}, high: start, start: start, window: window}
		canceled, cancel := context.WithCancel(context.Background())
		cancel()
		restoredOnce := false
		last := start
		for i := 2; i+1 < len(prog); i += 2 {
			op, arg := prog[i], int64(prog[i+1])
			var name string
			var got, want error
			switch op % 16 {
			case 0, 1, 2, 3: // Track with a small gap
				o := m.high + arg%4
				name = "Track"
				got, want = p.Track(o), m.track(o)
			case 4: // Track after a long gap, often past the window
				o := m.high + arg*(3*window+50)/255
				name = "Track(jump)"
				got, want = p.Track(o), m.track(o)
			case 5: // Track out of order
				o := m.high - 1 - arg%5
				name = "Track(old)"
				got, want = p.Track(o), m.track(o)
			case 6: // Skip
				to := m.high + arg%(2*window+3) - 2
				name = "Skip"
				got, want = p.Skip(to), m.skip(to)
			case 7, 8, 9: // Ack a pending offset, the arg-th from the smallest
				o := m.commit()
				for n := arg % (int64(len(m.pending)) + 1); n > 0 || (o < m.high && !m.pending[o]); o++ {
					if m.pending[o] {
						n--
					}
				}
				name = "Ack(pending)"
				got, want = p.Ack(o), m.ack(o)
			case 10: // Ack within the tracked span: pending, duplicate or gap
				o := m.high - 1 - arg%(window+1)
				name = "Ack(recent)"
				got, want = p.Ack(o), m.ack(o)
			case 11: // Ack stale: below the commit point, maybe laps ago
				o := m.commit() - 1 - arg*(3*window+5)/255
				name = "Ack(stale)"
				got, want = p.Ack(o), m.ack(o)
			case 12: // Ack never tracked: at or above the high mark, or negative
				o := m.high + arg%100
				if arg%5 == 0 {
					o = -1 - arg%7
				}
				name = "Ack(untracked)"
				got, want = p.Ack(o), m.ack(o)
			case 13: // Restore: before the first Track only
				name = "Restore"
				switch {
				case m.closed:
					got, want = p.Restore(ordset.New()), watermark.ErrClosed
				case m.high != m.start:
					got, want = p.Restore(ordset.New()), watermark.ErrOutOfOrder
				case !restoredOnce:
					restoredOnce = true
					done := ordset.New()
					// Ranges from the following bytes, some below start.
					for j := 0; j < int(arg%5) && i+3+j < len(prog); j++ {
						lo := start - 4 + int64(prog[i+2+j]%64)*(window+3)/32
						hi := lo + int64(prog[i+3+j]%7)
						done.AddRange(lo, hi)
						for o := max(lo, start); o < hi; o++ {
							m.restored[o] = true
						}
					}
					got = p.Restore(done)
					done.Clear() // Restore must have copied it
				default:
					continue
				}
			case 14: // Close (rarely)
				name = "Close"
				if arg%6 == 0 {
					p.Close()
					m.closed = true
				}
			case 15: // Drain and WaitRoom with a canceled context: never block
				name = "Drain/WaitRoom"
				switch {
				case len(m.pending) == 0:
					want = nil
				case m.closed:
					want = watermark.ErrClosed
				default:
					want = context.Canceled
				}
				if got = p.Drain(canceled); !sameErr(got, want) {
					break
				}
				o := m.high + arg%(window+2) - 1
				switch {
				case o-m.commit() < window || len(m.pending) == 0:
					want = nil
				case m.closed:
					want = watermark.ErrClosed
				default:
					want = context.Canceled
				}
				got = p.WaitRoom(canceled, o)
			}
			if !sameErr(got, want) {
				t.Fatalf("step %d: %s = %v, model says %v (window %d, high %d, commit %d)", i, name, got, want, window, m.high, m.commit())
			}
			c := p.Committable()
			if c != m.commit() {
				t.Fatalf("step %d after %s: Committable = %d, model %d (window %d, high %d)", i, name, c, m.commit(), window, m.high)
			}
			if c < last {
				t.Fatalf("step %d after %s: commit point went down %d -> %d", i, name, last, c)
			}
			last = c
			for o := range m.pending {
				if o < c {
					t.Fatalf("step %d after %s: commit point %d passed unacked offset %d", i, name, c, o)
				}
			}
			if got, want := p.Pending(), int64(len(m.pending)); got != want {
				t.Fatalf("step %d after %s: Pending = %d, model %d", i, name, got, want)
			}
			if p.High() != m.high {
				t.Fatalf("step %d after %s: High = %d, model %d", i, name, p.High(), m.high)
			}
			if p.Closed() != m.closed {
				t.Fatalf("step %d after %s: Closed = %v, model %v", i, name, p.Closed(), m.closed)
			}
			if s := p.Stats(); s.Committable != c || s.High != m.high || s.Pending != int64(len(m.pending)) || s.Window != window {
				t.Fatalf("step %d after %s: Stats = %+v, model commit %d high %d pending %d window %d", i, name, s, c, m.high, len(m.pending), window)
			}
			if (i/2)%8 == 0 {
				snap := ordset.New()
				if sc := p.Snapshot(snap); sc != c {
					t.Fatalf("step %d: Snapshot commit point %d, Committable %d", i, sc, c)
				}
				for o := c - 2; o < m.high+3*window; o++ {
					want := o >= c && ((o < m.high && !m.pending[o]) || (o >= m.high && m.restored[o]))
					if snap.Contains(o) != want {
						t.Fatalf("step %d: Snapshot holds %d = %v, model %v", i, o, snap.Contains(o), want)
					}
				}
			}
		}
	}
}
