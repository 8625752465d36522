package watermark

// This file holds the lock-free tracker of one partition: a ring of tagged
// 64-bit words over a sliding window of offsets.

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inorder/inorder/ordset"
)

// Word layout. Each ring word covers dataBits consecutive offsets (bit i set:
// offset k*dataBits+i is done), carries in the next tagBits bits the lap of
// the window it belongs to, and in its top bit whether it is sealed.
//
// The tag is what makes a late or duplicate Ack harmless after the ring has
// wrapped: Ack sets its bit with a CompareAndSwap that only succeeds on a word
// whose tag is the offset's own lap, so it can never mark an offset of a newer
// lap done (the ABA trap of ring trackers). A false match needs the ring to
// wrap 2^23 times (at least 2^23*80 = 6.7e8 offsets acked) between one Ack's
// load and its CompareAndSwap, *and* the word's other bits to be identical; Go
// preempts a goroutine within ~10ms.
//
// Sealed means every offset of the word is below the published high mark, so
// Ack need not load the high mark (a cache line the Track goroutine writes on
// every offset). Track seals a word after publishing a high mark past it.
//
// 40 data bits instead of 64 cost 1.6 bits per offset; the tag could not live
// in a separate word without an extra, unordered load.
const (
	dataBits  = 40
	tagShift  = dataBits
	tagBits   = 23
	dataMask  = 1<<dataBits - 1
	tagMask   = 1<<tagBits - 1
	sealedBit = 1 << 63
)

func wordTag(w uint64) uint64 { return w >> tagShift & tagMask }

// Partition tracks the in-flight offsets of one topic-partition and its
// commit point: the lowest offset not yet done, where done means acked, or a
// gap that was never delivered (compaction, transaction markers, aborted
// records).
//
// Algorithm: a ring of atomic words, one bit per offset of a window that
// slides from the commit point. Track (one goroutine) initialises a word the
// first time an offset in it is tracked and publishes the high mark after it;
// Ack (any goroutine) sets one bit with a tag-checked CompareAndSwap;
// Committable (any goroutine) moves the base over done bits and full words
// with a CompareAndSwap, so the commit point never decreases. A word is reused
// for a newer lap only after the base has passed it.
//
// Concurrency: Track, TrackWait, TrackBatch, TrackRange, Skip, WaitRoom and
// Restore must be called by one goroutine at a time (the partition's fetch
// loop). Every other method is safe for concurrent use. Ack, Track,
// TrackBatch and Committable do not allocate or lock.
//
// Memory: 8 bytes per 40 offsets of window (rounded up to a power of two
// words), plus O(ranges) for a restored set; about 16 KiB with the default
// window.
//
// A Partition must not be copied after first use.
type Partition struct {
	// Set at construction, read by everyone.
	ring    []atomic.Uint64
	mask    uint64 // len(ring)-1
	shift   uint   // log2(len(ring)): lap of word k is k>>shift
	window  int64
	start   int64
	closed  atomic.Bool
	waiters atomic.Int32 // goroutines in WaitRoom/Drain; Ack wakes them only if > 0
	_       [64]byte     // prevents false sharing between the read-mostly fields and high

	// high is one past the highest tracked or skipped offset. Written only by
	// the Track goroutine, after the words it covers are initialised.
	high atomic.Int64
	_    [56]byte // prevents false sharing between high and base

	// base: every offset below it is done. Moved forward by any goroutine
	// with CompareAndSwap (advance), and by Track's jump over a long gap.
	base atomic.Int64
	_    [56]byte // prevents false sharing between base and the Track state

	// Owned by the Track goroutine.
	hi       int64        // its copy of high
	initWord int64        // ring words below initWord (and at or above the base's word) are initialised
	fastEnd  atomic.Int64 // Track's fast path applies below it: min(initWord*dataBits, roomEnd); 0 while restLive; MinInt64 once closed (set by Close too)
	frontier int64        // the initialised, unsealed word holding the high mark's predecessor, or -1
	roomEnd  int64        // offsets below roomEnd fit in the window (cached from base)
	restLive bool         // the restored set may still hold offsets >= hi

	// restored holds offsets marked done by commit metadata that have not been
	// tracked yet. Guarded by rmu (Track and Snapshot, only while non-empty).
	rmu      sync.Mutex
	restored *ordset.Set

	// wmu guards waitCh (the broadcast to waiters) and the Stats observation.
	wmu      sync.Mutex
	waitCh   chan struct{}
	obsPoint int64
	obsTime  time.Time
}

// NewPartition returns a tracker for a partition whose first delivered offset
// will be start (the committed offset of the assignment). It panics if start
// is negative or an option is invalid (see WithWindow).
func NewPartition(start int64, opts ...Option) *Partition {
	if start < 0 {
		panic(fmt.Sprintf("watermark: negative start offset %d", start))
	}
	c := buildConfig(opts)
	n := nextPow2(uint64((c.window+dataBits-1)/dataBits) + 1)
	p := &Partition{
		ring:     make([]atomic.Uint64, n),
		mask:     n - 1,
		shift:    uint(bits.TrailingZeros64(n)),
		window:   int64(c.window),
		start:    start,
		hi:       start,
		initWord: start / dataBits,
		frontier: -1,
		roomEnd:  start + int64(c.window),
		obsPoint: start,
	}
	p.high.Store(start)
	p.base.Store(start)
	return p
}

func nextPow2(v uint64) uint64 {
	if v <= 1 {
		return 1
	}
	return 1 << bits.Len64(v-1)
}

func (p *Partition) tag(k uint64) uint64 { return (k >> p.shift) & tagMask }

// Start returns the first offset the partition was created for.
func (p *Partition) Start() int64 { return p.start }

// Window returns the window in offsets.
func (p *Partition) Window() int64 { return p.window }

// High returns one past the highest tracked or skipped offset (Start if none).
// Safe for concurrent use.
func (p *Partition) High() int64 { return p.high.Load() }

// Closed reports whether Close was called.
func (p *Partition) Closed() bool { return p.closed.Load() }

// Track records that offset has been delivered and is in flight. Offsets
// between the previous tracked offset and this one are gaps and count as
// done. It returns ErrOutOfOrder if offset is not above the last tracked or
// skipped offset, ErrWindowFull if it does not fit in the window yet (nothing
// is changed: wait with WaitRoom and retry, or use TrackWait), ErrClosed after
// Close, and ErrRestored if commit metadata given to Restore marks the offset
// done (it is then tracked and done: do not process it).
//
// Track must be called by one goroutine at a time. It does not block or
// allocate.
func (p *Partition) Track(offset int64) error {
	if p.trackFast(offset) {
		return nil
	}
	return p.track(offset)
}

// trackFast is Track's fast path, small enough to inline into Track and
// TrackWait: the next offset, no gap, in a word already initialised, with
// room, nothing restored and the partition open.
func (p *Partition) trackFast(offset int64) bool {
	if offset == p.hi && offset < p.fastEnd.Load() {
		p.hi = offset + 1
		p.high.Store(offset + 1)
		return true
	}
	return false
}

func (p *Partition) track(offset int64) error {
	err := p.stage(offset)
	if err != nil && err != ErrRestored {
		return err
	}
	p.refreshFast()
	p.high.Store(offset + 1)
	p.seal(offset)
	return err
}

// stage does Track's work but for publishing the high mark: it initialises
// the words up to offset's, marks the gap before it (and offset itself, if
// restored) done and moves p.hi past it. It returns nil or ErrRestored when
// offset is staged, else the error that left everything unchanged. The
// staged offsets reach acking goroutines only when the caller stores p.hi in
// the high mark. Track goroutine only.
func (p *Partition) stage(offset int64) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if offset < p.hi {
		return ErrOutOfOrder
	}
	from := p.hi
	if offset >= p.roomEnd {
		// makeRoom sees only the published high mark: while offsets staged
		// by this batch are unpublished, p.hi is above it and the base
		// cannot jump over them.
		jumped, ok := p.makeRoom(offset, offset)
		if !ok {
			return ErrWindowFull
		}
		if jumped {
			from = offset
		}
	}
	done := p.restLive && p.takeRestored(offset)
	end := offset
	if done {
		end = offset + 1
	}
	p.mark(from, end, offset)
	p.hi = offset + 1
	if done {
		return ErrRestored
	}
	return nil
}

// TrackBatch is Track for a fetch batch: it tracks offsets in order and
// publishes them to acking goroutines with one store of the high mark, so it
// costs a comparison per offset plus Track's per-word work. The offsets must
// be strictly increasing and above the last tracked or skipped offset;
// offsets between them are gaps, as with Track.
//
// It returns the number n of offsets it consumed and, when it stopped early,
// the error about offsets[n]: every offset of offsets[:n] is tracked either
// way. ErrOutOfOrder, ErrWindowFull and ErrClosed mean offsets[n] and the
// rest were not tracked. On ErrWindowFull (a batch that fits only in part),
// hand offsets[:n] to the handlers, wait with WaitRoom(ctx, offsets[n]) and
// go on with offsets[n:]: the room comes from acks of what is tracked, so a
// caller that held the batch back until all of it was tracked would wait
// forever. ErrRestored means offsets[n] was tracked and is done (commit
// metadata given to Restore marks it): do not process it, and go on with
// offsets[n+1:]. An empty batch returns 0, nil.
//
// Same goroutine rules as Track. It does not block or allocate.
func (p *Partition) TrackBatch(offsets []int64) (int, error) {
	if len(offsets) == 0 {
		return 0, nil
	}
	// Between calls the published high mark is p.hi.
	published := p.hi
	// sealFrom is the first word that the publication may seal: the
	// frontier left by the previous one (it holds the offsets the fast path
	// takes), or, if there is none or the base jumped, the first staged
	// offset's word. -1 until the first stage.
	sealFrom := int64(-1)
	fe := p.fastEnd.Load()
	n := 0
	var err error
	for n < len(offsets) {
		// The fast path: the next offset, in an initialised word, with
		// room, nothing restored, the partition open (as trackFast).
		hi := p.hi
		for n < len(offsets) && offsets[n] == hi && hi < fe {
			hi++
			n++
		}
		p.hi = hi
		if n == len(offsets) {
			break
		}
		o := offsets[n]
		err = p.stage(o)
		if err == ErrWindowFull && p.hi != published {
			// Room is measured from the published high mark: publish what
			// is staged (the commit point may then move over its gaps, as
			// it would after Track) and try again.
			p.publish(sealFrom)
			published, sealFrom = p.hi, -1
			err = p.stage(o)
		}
		if err != nil && err != ErrRestored {
			break
		}
		if sealFrom < 0 {
			// A jump (makeRoom) can only happen here, with nothing staged
			// before o; it resets the frontier.
			if sealFrom = p.frontier; sealFrom < 0 {
				sealFrom = o / dataBits
			}
		}
		if err != nil { // ErrRestored: offsets[n] is staged, and done
			break
		}
		n++
		fe = min(p.initWord*dataBits, p.roomEnd)
		if p.restLive {
			fe = 0
		}
	}
	if p.hi != published {
		p.publish(sealFrom)
	}
	return n, err
}

// TrackRange is TrackBatch for the contiguous offsets [lo, hi) (a fetch batch
// without gaps): same rules, results and goroutine contract, with n counted
// from lo, but its cost is per ring word (40 offsets), not per offset. An
// empty range (hi <= lo) returns 0, nil.
func (p *Partition) TrackRange(lo, hi int64) (int64, error) {
	if hi <= lo {
		return 0, nil
	}
	published := p.hi
	sealFrom := int64(-1) // as in TrackBatch
	fe := p.fastEnd.Load()
	o := lo
	var err error
	for o < hi {
		if o == p.hi && o < fe {
			// The fast path over the rest of the initialised words.
			o = min(hi, fe)
			p.hi = o
			continue
		}
		err = p.stage(o)
		if err == ErrWindowFull && p.hi != published {
			p.publish(sealFrom)
			published, sealFrom = p.hi, -1
			err = p.stage(o)
		}
		if err != nil && err != ErrRestored {
			break
		}
		if sealFrom < 0 {
			if sealFrom = p.frontier; sealFrom < 0 {
				sealFrom = o / dataBits
			}
		}
		if err != nil {
			break
		}
		o++
		fe = min(p.initWord*dataBits, p.roomEnd)
		if p.restLive {
			fe = 0
		}
	}
	if p.hi != published {
		p.publish(sealFrom)
	}
	return o - lo, err
}

// publish stores p.hi in the high mark, handing the staged offsets to acking
// goroutines (their words are initialised), and seals the words it passed
// from sealFrom on. Track goroutine only.
func (p *Partition) publish(sealFrom int64) {
	p.refreshFast()
	p.high.Store(p.hi)
	p.sealBatch(sealFrom, p.hi-1)
}

// sealBatch seals the initialised words from first (if >= 0) up to the word
// before last's, which the high mark just published has passed, and makes
// last's word the frontier. Track goroutine only, after publishing the high
// mark last+1.
func (p *Partition) sealBatch(first, last int64) {
	kLast := last / dataBits
	for k := first; k >= 0 && k < kLast; k++ {
		w := &p.ring[uint64(k)&p.mask]
		tag := p.tag(uint64(k))
		for {
			old := w.Load()
			if wordTag(old) != tag || old&sealedBit != 0 || w.CompareAndSwap(old, old|sealedBit) {
				break
			}
		}
	}
	p.frontier = kLast
}

// TrackWait is Track that waits for room instead of returning ErrWindowFull.
// It returns ctx.Err() if ctx ends first, and ErrClosed if the partition is
// closed while it waits. Same goroutine rules as Track.
func (p *Partition) TrackWait(ctx context.Context, offset int64) error {
	if p.trackFast(offset) {
		return nil
	}
	return p.trackWait(ctx, offset)
}

func (p *Partition) trackWait(ctx context.Context, offset int64) error {
	for {
		err := p.Track(offset)
		if err != ErrWindowFull {
			return err
		}
		if err := p.WaitRoom(ctx, offset); err != nil {
			return err
		}
	}
}

// Skip declares that no offset below to that has not been tracked yet will
// ever be delivered: they are gaps (for example a transaction marker at the
// end of the partition). A to at or below the high mark is a no-op. It
// returns ErrWindowFull if to-1 does not fit in the window yet, and ErrClosed
// after Close. Same goroutine rules as Track.
func (p *Partition) Skip(to int64) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if to <= p.hi {
		return nil
	}
	from := p.hi
	if to-1 >= p.roomEnd {
		jumped, ok := p.makeRoom(to-1, to)
		if !ok {
			return ErrWindowFull
		}
		if jumped {
			from = to
		}
	}
	if p.restLive {
		p.takeRestored(to - 1)
	}
	if from < to {
		p.mark(from, to, to-1)
	}
	p.hi = to
	p.refreshFast()
	p.high.Store(to)
	if from < to {
		p.seal(to - 1)
	}
	return nil
}

// refreshFast recomputes fastEnd after the Track state changed.
func (p *Partition) refreshFast() {
	v := min(p.initWord*dataBits, p.roomEnd)
	if p.restLive {
		v = 0
	}
	p.fastEnd.Store(v)
	if p.closed.Load() {
		// Close may have run between our check and the store above: its
		// fastEnd.Store(MinInt64) must win.
		p.fastEnd.Store(math.MinInt64)
	}
}

// makeRoom makes the word of offset last usable. If everything tracked is
// done and last is still beyond the window, the base jumps to target over
// what can only be a gap. Track goroutine only.
func (p *Partition) makeRoom(last, target int64) (jumped, ok bool) {
	b := p.advance()
	if last-b < p.window {
		p.roomEnd = b + p.window
		return false, true
	}
	if b < p.hi {
		return false, false // something in flight holds the window
	}
	// Nothing in flight: every offset below target is done. Advancers never
	// move base past high (== p.hi), so this CompareAndSwap cannot race them.
	if !p.base.CompareAndSwap(b, target) {
		return false, false
	}
	p.roomEnd = target + p.window
	p.initWord = target / dataBits
	p.frontier = -1 // a word of the past: never seal it (its slot may be reused)
	return true, true
}

// mark sets the bits of [from, to) done and initialises every ring word up to
// and including the word of last. Track goroutine only; it runs before the
// high mark that publishes these offsets.
func (p *Partition) mark(from, to, last int64) {
	kLast := last / dataBits
	if k := from / dataBits; k < p.initWord && from < to {
		// The word holding from is live: Or the gap bits into it. It cannot
		// be retired meanwhile: its bits at and above from are still clear.
		hi := min(to, (k+1)*dataBits)
		p.ring[uint64(k)&p.mask].Or(rangeBits(from-k*dataBits, hi-k*dataBits))
	}
	for k := p.initWord; k <= kLast; k++ {
		lo, hi := max(from, k*dataBits), min(to, (k+1)*dataBits)
		var data uint64
		if lo < hi {
			data = rangeBits(lo-k*dataBits, hi-k*dataBits)
		}
		if k < kLast {
			// Only gaps (offsets in [from, last)): an ack cannot change them,
			// so the word may be sealed before the high mark passes it.
			data |= sealedBit
		}
		p.ring[uint64(k)&p.mask].Store(p.tag(uint64(k))<<tagShift | data)
	}
	if kLast >= p.initWord {
		p.initWord = kLast + 1
	}
}

// seal marks the frontier word sealed once the published high mark has
// passed its end, and makes the word of last the frontier. Track goroutine
// only, after publishing the high mark last+1.
func (p *Partition) seal(last int64) {
	kLast := last / dataBits
	if f := p.frontier; f >= 0 && f != kLast && (f+1)*dataBits <= last+1 {
		w := &p.ring[uint64(f)&p.mask]
		tag := p.tag(uint64(f))
		for {
			old := w.Load()
			if wordTag(old) != tag || old&sealedBit != 0 || w.CompareAndSwap(old, old|sealedBit) {
				break
			}
		}
	}
	p.frontier = kLast
}

// rangeBits returns a word with bits [lo, hi) set, 0 <= lo < hi <= dataBits.
func rangeBits(lo, hi int64) uint64 {
	return (uint64(1)<<uint(hi-lo) - 1) << uint(lo)
}

// Ack marks offset done. It may be called from any goroutine, concurrently
// with everything else; it does not block, lock or allocate. It returns nil
// also for an offset that is already done: a duplicate ack, a stale one (below
// the commit point, or from before this partition's start) or a gap. It
// returns ErrNotTracked for an offset at or above the high mark, or negative,
// and ErrClosed after Close; neither changes anything.
func (p *Partition) Ack(offset int64) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if offset < p.start {
		if offset < 0 {
			return ErrNotTracked
		}
		return nil
	}
	k := uint64(offset) / dataBits
	w := &p.ring[k&p.mask]
	tag := p.tag(k)
	bit := uint64(1) << (uint64(offset) % dataBits)
	for {
		old := w.Load()
		if wordTag(old) != tag || old&sealedBit == 0 {
			// Not sealed: offset may be at or above the high mark. The word
			// was loaded first: an offset below the high mark has its word
			// initialised before that high mark was published.
			if offset >= p.high.Load() {
				return ErrNotTracked
			}
			if wordTag(old) != tag {
				return nil // another lap: the word was retired, offset is done
			}
		}
		if old&bit != 0 {
			return nil // duplicate, or a gap
		}
		if w.CompareAndSwap(old, old|bit) {
			break
		}
	}
	if p.waiters.Load() != 0 && int64(k) <= p.base.Load()/dataBits {
		// Only an ack in the base's word (or one the base has just passed)
		// can move the commit point that a waiter is waiting on.
		p.wake()
	}
	return nil
}

// Committable returns the commit point: every offset below it is done, so it
// is the offset to commit. It never decreases. Safe for concurrent use; it
// does not lock or allocate, and costs O(words it moves over).
func (p *Partition) Committable() int64 { return p.advance() }

// advance moves the base over done offsets and returns it.
func (p *Partition) advance() int64 {
	for {
		// high before the word: every word below a loaded high is initialised.
		h := p.high.Load()
		b := p.base.Load()
		if b >= h {
			return b
		}
		k := uint64(b) / dataBits
		w := p.ring[k&p.mask].Load()
		if wordTag(w) != p.tag(k) {
			// The word was retired and reused: the base has moved on. Reload.
			continue
		}
		shift := uint(uint64(b) % dataBits)
		free := (^w & dataMask) >> shift << shift
		var nb int64
		if free == 0 {
			nb = int64(k+1) * dataBits
		} else {
			nb = int64(k)*dataBits + int64(bits.TrailingZeros64(free))
		}
		nb = min(nb, h)
		if nb == b {
			return b
		}
		if p.base.CompareAndSwap(b, nb) && nb < int64(k+1)*dataBits {
			return nb
		}
	}
}

// Pending returns the number of tracked offsets not yet acked. Safe for
// concurrent use; it costs O(window/40).
func (p *Partition) Pending() int64 {
	// high before base: then high-base <= window and every word between is
	// initialised (or retired).
	h := p.high.Load()
	return p.pending(p.advance(), h)
}

// pending counts the offsets in [b, h) that are not done.
func (p *Partition) pending(b, h int64) int64 {
	var n int64
	for k := b / dataBits; k*dataBits < h; k++ {
		lo, hi := max(b, k*dataBits)-k*dataBits, min(h, (k+1)*dataBits)-k*dataBits
		n += int64(bits.OnesCount64(^p.doneBits(k) & rangeBits(lo, hi)))
	}
	return n
}

// doneBits returns the done bits of ring word k, all set if the word has been
// retired since (its offsets are below the base). k must be a word below a
// high mark loaded before the base, as in Pending and Snapshot.
func (p *Partition) doneBits(k int64) uint64 {
	w := p.ring[uint64(k)&p.mask].Load()
	if wordTag(w) != p.tag(uint64(k)) {
		return dataMask
	}
	return w & dataMask
}

// Snapshot clears dst, fills it with the offsets at or above the commit point
// known to be done (acked, gaps, and restored offsets not tracked yet), and
// returns the commit point. It is what commit metadata encodes. Safe for
// concurrent use (dst belongs to the caller); it costs O(window/40 + ranges).
// An ack that lands during the call may or may not be included.
func (p *Partition) Snapshot(dst *ordset.Set) int64 {
	dst.Clear()
	h := p.high.Load() // before base, as in Pending
	b := p.advance()
	runLo := int64(-1)
	flush := func(end int64) {
		if runLo >= 0 {
			dst.AddRange(runLo, end)
			runLo = -1
		}
	}
	for k := b / dataBits; k*dataBits < h; k++ {
		base := k * dataBits
		lo, hi := max(b, base), min(h, base+dataBits)
		w := p.doneBits(k)
		for o := lo; o < hi; {
			rest := w >> uint(o-base)
			var n int64
			if rest&1 == 1 { // a run of done offsets starts (or goes on) at o
				n = int64(bits.TrailingZeros64(^rest))
				if runLo < 0 {
					runLo = o
				}
			} else {
				flush(o)
				n = int64(bits.TrailingZeros64(rest)) // 64 when rest == 0
			}
			o = min(o+n, hi)
		}
	}
	flush(h)
	p.rmu.Lock()
	if p.restored != nil {
		for lo, hi := range p.restored.RangesFrom(h) {
			dst.AddRange(lo, hi)
		}
	}
	p.rmu.Unlock()
	return b
}

// Restore marks the offsets of done (typically decoded from commit metadata)
// as already done: Track returns ErrRestored for them, and they count as
// acked. Offsets below Start are ignored. It must be called before the first
// Track, by the Track goroutine; later it returns ErrOutOfOrder. done is
// copied.
func (p *Partition) Restore(done *ordset.Set) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if p.hi != p.start {
		return fmt.Errorf("%w: Restore after Track", ErrOutOfOrder)
	}
	r := done.Clone()
	r.RemoveBelow(p.start)
	if r.Len() == 0 {
		return nil
	}
	p.rmu.Lock()
	p.restored = r
	p.rmu.Unlock()
	p.restLive = true
	p.refreshFast()
	return nil
}

// takeRestored reports whether offset is restored and forgets restored
// offsets up to it. Track goroutine only.
func (p *Partition) takeRestored(offset int64) bool {
	p.rmu.Lock()
	in := p.restored.Contains(offset)
	p.restored.RemoveBelow(offset + 1)
	if p.restored.Len() == 0 {
		p.restored = nil
		p.restLive = false
	}
	p.rmu.Unlock()
	return in
}

// Close closes the partition: later Track, Skip and Ack calls return
// ErrClosed and waiters are released. Committable, Pending, Snapshot and
// Stats still answer. Close is idempotent and safe for concurrent use.
func (p *Partition) Close() {
	p.closed.Store(true)
	p.fastEnd.Store(math.MinInt64) // off Track's fast path (see refreshFast)
	p.wake()
}

// WaitRoom blocks until offset fits in the window (Track or Skip to it would
// not return ErrWindowFull), without spinning: acks at the head of the window
// wake it. It returns ctx.Err() if ctx ends first and ErrClosed if the
// partition is closed. Same goroutine rules as Track.
func (p *Partition) WaitRoom(ctx context.Context, offset int64) error {
	return p.wait(ctx, func() bool {
		b := p.advance()
		return offset-b < p.window || b >= p.high.Load()
	})
}

// Drain blocks until every tracked offset is acked, without spinning. It
// returns nil then, ctx.Err() if ctx ends first, and ErrClosed if the
// partition is closed while offsets are pending. Safe for concurrent use.
func (p *Partition) Drain(ctx context.Context) error {
	return p.wait(ctx, func() bool { return p.advance() >= p.high.Load() })
}

func (p *Partition) wait(ctx context.Context, cond func() bool) error {
	if cond() {
		return nil
	}
	p.waiters.Add(1)
	defer p.waiters.Add(-1)
	for {
		p.wmu.Lock()
		if p.waitCh == nil {
			p.waitCh = make(chan struct{})
		}
		ch := p.waitCh
		p.wmu.Unlock()
		// Check after registering: an ack that this check misses sees
		// waiters > 0 and closes ch.
		if cond() {
			return nil
		}
		if p.closed.Load() {
			return ErrClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// wake releases every waiter; they re-check their condition.
func (p *Partition) wake() {
	p.wmu.Lock()
	if p.waitCh != nil {
		close(p.waitCh)
		p.waitCh = nil
	}
	p.wmu.Unlock()
}

// Stats is a snapshot of a partition's state.
type Stats struct {
	Committable int64         // commit point
	High        int64         // one past the highest tracked offset
	Pending     int64         // tracked and not acked
	Window      int64         // the window, in offsets
	Stuck       time.Duration // how long the commit point has not moved while something is pending
}

// Stats returns a snapshot of the partition. Stuck is measured between calls
// to Stats: call it periodically (the adapters do, on every commit tick) to
// detect a message that holds the commit point. Safe for concurrent use.
func (p *Partition) Stats() Stats {
	h := p.high.Load()
	b := p.advance()
	s := Stats{Committable: b, High: p.high.Load(), Pending: p.pending(b, h), Window: p.window}
	now := time.Now()
	p.wmu.Lock()
	if s.Pending == 0 || s.Committable != p.obsPoint || p.obsTime.IsZero() {
		p.obsPoint, p.obsTime = s.Committable, now
	}
	if s.Pending > 0 {
		s.Stuck = now.Sub(p.obsTime)
	}
	p.wmu.Unlock()
	return s
}
