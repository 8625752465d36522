// FuzzPartition: a sequential watermark.Partition program against a model of
// the pending offsets (the same semantics as watermark/model_test.go).
package fuzz_test

import (
	"context"
	"errors"
	"testing"

	"github.com/inorder/inorder/fuzz"
	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark"
)

// sameErr reports whether got is want (both nil, or got wraps want).
func sameErr(got, want error) bool {
	if want == nil {
		return got == nil
	}
	return errors.Is(got, want)
}

// FuzzPartition interprets the input as: window (1 + b%150, small so that
// the ring wraps), start (0..255), then 2-byte instructions (op, arg); a
// TrackBatch instruction also reads the bytes after it as the batch's steps.
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
		m := fuzz.NewPartitionModel(start, window)
		canceled, cancel := context.WithCancel(context.Background())
		cancel()
		restoredOnce := false
		last := start
		for i := 2; i+1 < len(prog); i += 2 {
			op, arg := prog[i], int64(prog[i+1])
			var name string
			var got, want error
			switch op % 16 {
			case 0, 1, 2: // Track with a small gap
				o := m.High + arg%4
				name = "Track"
				got, want = p.Track(o), m.Track(o)
			case 3: // TrackBatch of 1 + arg%16 offsets, steps from the next bytes
				batch := make([]int64, 1+arg%16)
				o := m.High + arg%3
				for j := range batch {
					b := byte(j*53) ^ byte(arg)
					if i+2+j < len(prog) {
						b = prog[i+2+j]
					}
					switch {
					case j == 0:
					case b%31 == 0: // not increasing
						o -= int64(b % 3)
					case b%23 == 0: // a long gap, often past the window
						o += int64(b) * (3*window + 50) / 255
					default:
						o += 1 + int64(b%4)
					}
					batch[j] = o
				}
				if arg&0x80 != 0 { // TrackRange over the batch's span instead
					lo, hi := batch[0], batch[len(batch)-1]+1
					name = "TrackRange"
					n, err := p.TrackRange(lo, hi)
					wn, werr := m.TrackRange(lo, hi)
					if n != wn {
						t.Fatalf("step %d: TrackRange(%d, %d) tracked %d, model %d (window %d, high %d, commit %d)", i, lo, hi, n, wn, window, m.High, m.Commit())
					}
					got, want = err, werr
					break
				}
				name = "TrackBatch"
				n, err := p.TrackBatch(batch)
				wn, werr := m.TrackBatch(batch)
				if n != wn {
					t.Fatalf("step %d: TrackBatch(%v) tracked %d, model %d (window %d, high %d, commit %d)", i, batch, n, wn, window, m.High, m.Commit())
				}
				got, want = err, werr
			case 4: // Track after a long gap, often past the window
				o := m.High + arg*(3*window+50)/255
				name = "Track(jump)"
				got, want = p.Track(o), m.Track(o)
			case 5: // Track out of order
				o := m.High - 1 - arg%5
				name = "Track(old)"
				got, want = p.Track(o), m.Track(o)
			case 6: // Skip
				to := m.High + arg%(2*window+3) - 2
				name = "Skip"
				got, want = p.Skip(to), m.Skip(to)
			case 7, 8, 9: // Ack a pending offset, the arg-th from the smallest
				o := m.Commit()
				for n := arg % (m.Pending.Len() + 1); n > 0 || (o < m.High && !m.Pending.Contains(o)); o++ {
					if m.Pending.Contains(o) {
						n--
					}
				}
				name = "Ack(pending)"
				got, want = p.Ack(o), m.Ack(o)
			case 10: // Ack within the tracked span: pending, duplicate or gap
				o := m.High - 1 - arg%(window+1)
				name = "Ack(recent)"
				got, want = p.Ack(o), m.Ack(o)
			case 11: // Ack stale: below the commit point, maybe laps ago
				o := m.Commit() - 1 - arg*(3*window+5)/255
				name = "Ack(stale)"
				got, want = p.Ack(o), m.Ack(o)
			case 12: // Ack never tracked: at or above the high mark, or negative
				o := m.High + arg%100
				if arg%5 == 0 {
					o = -1 - arg%7
				}
				name = "Ack(untracked)"
				got, want = p.Ack(o), m.Ack(o)
			case 13: // Restore: before the first Track only
				name = "Restore"
				switch {
				case m.Closed:
					got, want = p.Restore(ordset.New()), watermark.ErrClosed
				case m.High != m.Start:
					got, want = p.Restore(ordset.New()), watermark.ErrOutOfOrder
				case !restoredOnce:
					restoredOnce = true
					done := ordset.New()
					// Ranges from the following bytes, some below start.
					for j := 0; j < int(arg%5) && i+3+j < len(prog); j++ {
						lo := start - 4 + int64(prog[i+2+j]%64)*(window+3)/32
						hi := lo + int64(prog[i+3+j]%7)
						done.AddRange(lo, hi)
						m.Restored.AddRange(max(lo, start), hi)
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
					m.Closed = true
				}
			case 15: // Drain and WaitRoom with a canceled context: never block
				name = "Drain/WaitRoom"
				switch {
				case m.Pending.Len() == 0:
					want = nil
				case m.Closed:
					want = watermark.ErrClosed
				default:
					want = context.Canceled
				}
				if got = p.Drain(canceled); !sameErr(got, want) {
					break
				}
				o := m.High + arg%(window+2) - 1
				switch {
				case o-m.Commit() < window || m.Pending.Len() == 0:
					want = nil
				case m.Closed:
					want = watermark.ErrClosed
				default:
					want = context.Canceled
				}
				got = p.WaitRoom(canceled, o)
			}
			if !sameErr(got, want) {
				t.Fatalf("step %d: %s = %v, model says %v (window %d, high %d, commit %d)", i, name, got, want, window, m.High, m.Commit())
			}
			c := p.Committable()
			if c != m.Commit() {
				t.Fatalf("step %d after %s: Committable = %d, model %d (window %d, high %d)", i, name, c, m.Commit(), window, m.High)
			}
			if c < last {
				t.Fatalf("step %d after %s: commit point went down %d -> %d", i, name, last, c)
			}
			last = c
			if o, ok := m.Pending.Min(); ok && o < c {
				t.Fatalf("step %d after %s: commit point %d passed unacked offset %d", i, name, c, o)
			}
			if got, want := p.Pending(), m.Pending.Len(); got != want {
				t.Fatalf("step %d after %s: Pending = %d, model %d", i, name, got, want)
			}
			if p.High() != m.High {
				t.Fatalf("step %d after %s: High = %d, model %d", i, name, p.High(), m.High)
			}
			if p.Closed() != m.Closed {
				t.Fatalf("step %d after %s: Closed = %v, model %v", i, name, p.Closed(), m.Closed)
			}
			if s := p.Stats(); s.Committable != c || s.High != m.High || s.Pending != m.Pending.Len() || s.Window != window {
				t.Fatalf("step %d after %s: Stats = %+v, model commit %d high %d pending %d window %d", i, name, s, c, m.High, m.Pending.Len(), window)
			}
			if (i/2)%8 == 0 {
				snap := ordset.New()
				if sc := p.Snapshot(snap); sc != c {
					t.Fatalf("step %d: Snapshot commit point %d, Committable %d", i, sc, c)
				}
				for o := c - 2; o < m.High+3*window; o++ {
					want := o >= c && ((o < m.High && !m.Pending.Contains(o)) || (o >= m.High && m.Restored.Contains(o)))
					if snap.Contains(o) != want {
						t.Fatalf("step %d: Snapshot holds %d = %v, model %v", i, o, snap.Contains(o), want)
					}
				}
			}
		}
	}
}
