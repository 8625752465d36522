package engine_test

// The scheduler against a plain model: the model test and FuzzScheduler
// drive engine.TestSched (the scheduler alone, no goroutine) with the same
// operations and check after each one what the model says it must do.

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/inorder/inorder/adapters/internal/engine"
)

type msgState int

const (
	queued msgState = iota
	running
	handled
	dropped
	refused
	waiting // for its retry
)

type modelMsg struct {
	part  int
	off   int64
	key   []byte
	state msgState
	due   int64 // while waiting
}

// schedModel runs a TestSched with simulated workers: a worker is busy from
// the Take of a message to its Done.
type schedModel struct {
	t              testing.TB
	mode           engine.Ordering
	keyless        bool // KeylessOrdered
	workers        int
	s              *engine.TestSched
	parts          []*engine.Part
	revoked        []bool
	eager          []bool
	queuedAtRevoke []int64
	msgs           [][]*modelMsg // per partition, by offset
	queue          [][]*modelMsg // per partition, queued, by offset
	running        []engine.TestTask
	partRun        []int
	keyRun         map[string]bool // lanes with a message running or waiting for its retry
	clock          int64
	waits          []*modelMsg // waiting for their retry
	ops            int
}

func newSchedModel(t testing.TB, mode engine.Ordering, keyless bool, parts, workers int, weakHash bool) *schedModel {
	seed := maphash.MakeSeed()
	hash := func(k []byte) uint64 { return maphash.Bytes(seed, k) }
	if weakHash {
		hash = func(k []byte) uint64 { return uint64(len(k)) & 1 } // collisions on purpose
	}
	m := &schedModel{
		t: t, mode: mode, keyless: keyless, workers: workers,
		s:              engine.NewTestSched(mode, keyless, workers, hash),
		revoked:        make([]bool, parts),
		eager:          make([]bool, parts),
		queuedAtRevoke: make([]int64, parts),
		msgs:           make([][]*modelMsg, parts),
		queue:          make([][]*modelMsg, parts),
		partRun:        make([]int, parts),
		keyRun:         make(map[string]bool),
	}
	for i := range parts {
		m.parts = append(m.parts, engine.NewTestPart(int32(i)))
	}
	return m
}

func (m *schedModel) fatalf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("%s (mode %v, keyless ordered %v, %d partitions, %d workers, op %d)",
		fmt.Sprintf(format, args...), m.mode, m.keyless, len(m.parts), m.workers, m.ops)
}

// lane names what a message must not overlap with ("" for nothing).
func (m *schedModel) lane(msg *modelMsg) string {
	switch {
	case m.mode == engine.ByPartition:
		return fmt.Sprint(msg.part)
	case m.mode == engine.ByKey && (len(msg.key) > 0 || m.keyless):
		return fmt.Sprintf("%d/%s", msg.part, msg.key)
	}
	return ""
}

// allowed returns the queued messages of partition pi that a worker may
// start now, by offset.
func (m *schedModel) allowed(pi int) []*modelMsg {
	if m.revoked[pi] {
		return nil
	}
	var out []*modelMsg
	seen := map[string]bool{}
	for _, msg := range m.queue[pi] {
		l := m.lane(msg)
		if l == "" {
			out = append(out, msg)
			continue
		}
		if seen[l] {
			continue
		}
		seen[l] = true
		if !m.keyRun[l] {
			out = append(out, msg)
		}
	}
	return out
}

func (m *schedModel) deliver(pi int, key []byte) {
	p := m.parts[pi]
	msg := &modelMsg{part: pi, off: int64(len(m.msgs[pi])), key: key}
	m.msgs[pi] = append(m.msgs[pi], msg)
	ok := m.s.Push(p, msg.off, key)
	if ok == m.revoked[pi] {
		m.fatalf("Push to partition %d (revoked %v) = %v", pi, m.revoked[pi], ok)
	}
	if !ok {
		msg.state = refused
		return
	}
	m.queue[pi] = append(m.queue[pi], msg)
}

// fill lets every free worker take a message, checking each choice, then
// checks that no worker is left idle while a message may start. Each take
// asks for up to more messages beyond the first (a run: Unordered only,
// where they must be the partition's next ones); each of them counts as a
// worker here.
func (m *schedModel) fill(more int) {
	for len(m.running) < m.workers {
		least, any := 1<<30, false
		for pi := range m.parts {
			if len(m.allowed(pi)) > 0 {
				least, any = min(least, m.partRun[pi]), true
			}
		}
		t, ok := m.s.Take()
		if !ok {
			if any {
				m.fatalf("a worker is idle while a message may start")
			}
			break
		}
		pi := int(t.Part().TP.Partition)
		if !any {
			m.fatalf("took %d/%d while the model allows nothing", pi, t.Offset())
		}
		al := m.allowed(pi)
		switch {
		case len(al) == 0:
			m.fatalf("took %d/%d: nothing of partition %d may start", pi, t.Offset(), pi)
		case al[0].off != t.Offset():
			m.fatalf("took %d/%d, want the lowest offset that may start, %d", pi, t.Offset(), al[0].off)
		case m.partRun[pi] != least:
			m.fatalf("took from partition %d with %d running while another with work has %d (fairness)",
				pi, m.partRun[pi], least)
		}
		msg := al[0]
		msg.state = running
		m.queue[pi] = removeMsg(m.queue[pi], msg)
		m.partRun[pi]++
		if l := m.lane(msg); l != "" {
			m.keyRun[l] = true
		}
		m.running = append(m.running, t)
		if k := min(more, m.workers-len(m.running)); k > 0 {
			// The extras are, one after the other, what a take limited
			// to this partition must hand out next; ByPartition has no
			// runs (a call holds its partition).
			extra := m.s.TakeMore(t, k)
			if m.mode == engine.ByPartition && len(extra) > 0 {
				m.fatalf("TakeMore handed out %d with %v", len(extra), m.mode)
			}
			for _, x := range extra {
				al := m.allowed(pi)
				if len(al) == 0 || int(x.Part().TP.Partition) != pi || x.Offset() != al[0].off {
					m.fatalf("TakeMore handed out %d/%d, want the next allowed of partition %d (%d allowed)",
						x.Part().TP.Partition, x.Offset(), pi, len(al))
				}
				al[0].state = running
				m.queue[pi] = removeMsg(m.queue[pi], al[0])
				m.partRun[pi]++
				if l := m.lane(al[0]); l != "" {
					m.keyRun[l] = true
				}
				m.running = append(m.running, x)
			}
			if len(extra) < k && m.mode != engine.ByPartition && len(m.allowed(pi)) > 0 {
				m.fatalf("TakeMore(%d) handed out %d while partition %d still has %d allowed", k, len(extra), pi, len(m.allowed(pi)))
			}
		}
	}
	m.checkCounts()
}

func removeMsg(q []*modelMsg, msg *modelMsg) []*modelMsg {
	for i, x := range q {
		if x == msg {
			return append(q[:i], q[i+1:]...)
		}
	}
	panic("not queued")
}

// complete ends the handler call of running[i].
func (m *schedModel) complete(i int) {
	t := m.running[i]
	m.running = append(m.running[:i], m.running[i+1:]...)
	pi := int(t.Part().TP.Partition)
	msg := m.msgs[pi][t.Offset()]
	if msg.state != running {
		m.fatalf("done of %d/%d in state %d", pi, t.Offset(), msg.state)
	}
	msg.state = handled
	m.partRun[pi]--
	if l := m.lane(msg); l != "" {
		delete(m.keyRun, l)
	}
	m.s.Done(t)
}

// fail ends the handler call of running[i] with a failure: the message
// waits wait ticks for its retry, holding its lane.
func (m *schedModel) fail(i int, wait int64) {
	t := m.running[i]
	m.running = append(m.running[:i], m.running[i+1:]...)
	pi := int(t.Part().TP.Partition)
	msg := m.msgs[pi][t.Offset()]
	m.partRun[pi]--
	m.s.Fail(t, wait)
	if m.revoked[pi] { // dropped: counted as unackable, now or when dropped
		msg.state = dropped
		m.queuedAtRevoke[pi]++
		if l := m.lane(msg); l != "" {
			delete(m.keyRun, l)
		}
		return
	}
	msg.state, msg.due = waiting, m.clock+wait
	m.waits = append(m.waits, msg)
}

// advance moves the clock on: the retries due are queued again, in offset
// order among their partition's queue, and free their lane.
func (m *schedModel) advance(d int64) {
	m.clock += d
	m.s.Advance(d)
	kept := m.waits[:0]
	for _, msg := range m.waits {
		if msg.state != waiting {
			continue // dropped by a revoke
		}
		if msg.due > m.clock {
			kept = append(kept, msg)
			continue
		}
		msg.state = queued
		q := m.queue[msg.part]
		i := 0
		for i < len(q) && q[i].off < msg.off {
			i++
		}
		m.queue[msg.part] = append(q[:i], append([]*modelMsg{msg}, q[i:]...)...)
		if l := m.lane(msg); l != "" {
			delete(m.keyRun, l)
		}
	}
	m.waits = kept
}

// revoke revokes partition pi; eager drops its queue at once, as the
// session does, else the scheduler drops it when it meets it.
func (m *schedModel) revoke(pi int, eager bool) {
	if m.revoked[pi] {
		return
	}
	m.revoked[pi] = true
	engine.SetRevoking(m.parts[pi])
	for _, msg := range m.queue[pi] {
		msg.state = dropped
	}
	m.queuedAtRevoke[pi] = int64(len(m.queue[pi]))
	m.queue[pi] = nil
	for _, msg := range m.waits {
		if msg.part == pi && msg.state == waiting {
			msg.state = dropped
			m.queuedAtRevoke[pi]++
			if l := m.lane(msg); l != "" {
				delete(m.keyRun, l)
			}
		}
	}
	if eager {
		m.eager[pi] = true
		if n := m.s.Drop(m.parts[pi]); n != m.queuedAtRevoke[pi] {
			m.fatalf("Drop(%d) = %d, want the %d queued", pi, n, m.queuedAtRevoke[pi])
		}
	}
}

// checkCounts compares the scheduler's ready count and key queues with the
// model.
func (m *schedModel) checkCounts() {
	want, lazy := 0, 0
	for pi, p := range m.parts {
		if m.revoked[pi] { // dropped at revoke if eager, else when a take meets it
			lazy += m.s.ReadyOf(p)
			if m.eager[pi] && m.s.ReadyOf(p) != 0 {
				m.fatalf("partition %d dropped but has %d ready", pi, m.s.ReadyOf(p))
			}
		}
		n := len(m.allowed(pi))
		if m.mode == engine.ByPartition {
			n = min(n, 1)
		}
		want += n
	}
	// ByKey counts the messages not yet met behind a busy key as ready: an
	// upper bound (a take that finds nothing parks them), never below.
	if got := m.s.Ready() - lazy; got != want && (m.mode != engine.ByKey || got < want) {
		m.fatalf("Ready() = %d (+%d of revoked partitions), want %d", got, lazy, want)
	}
	if m.mode != engine.ByKey {
		return
	}
	// A key has a queue while it is busy (running, waiting for a retry, or
	// with messages parked behind): at least the lanes running or waiting,
	// at most the lanes with a message in flight.
	for pi, p := range m.parts {
		if m.revoked[pi] && !m.eager[pi] {
			continue // not dropped yet, maybe
		}
		prefix := fmt.Sprint(pi, "/")
		busy, live := 0, map[string]bool{}
		if !m.revoked[pi] {
			for _, msg := range m.queue[pi] {
				if l := m.lane(msg); l != "" {
					live[l] = true
				}
			}
		}
		// A revoked partition's lane keeps the keys still running: a new
		// assignment's messages of those keys wait for them.
		for l := range m.keyRun {
			if strings.HasPrefix(l, prefix) {
				live[l] = true
				busy++
			}
		}
		if got := m.s.Keys(p); got < busy || got > len(live) {
			m.fatalf("partition %d holds %d key queues, want %d..%d (busy keys..keys in flight)", pi, got, busy, len(live))
		}
	}
}

// finish runs everything still queued to the end and checks that every
// message was handled exactly once, or dropped because its partition was
// revoked (and then counted as unackable).
func (m *schedModel) finish() {
	for {
		m.fill(0)
		if len(m.running) == 0 && len(m.waits) == 0 {
			break
		}
		for len(m.running) > 0 {
			m.complete(0)
		}
		m.advance(1 << 20)
	}
	for pi, p := range m.parts {
		if m.revoked[pi] {
			m.s.Drop(p) // no-op if the scheduler dropped it already
			if got := engine.Unackable(p); got != m.queuedAtRevoke[pi] {
				m.fatalf("partition %d: %d unackable, want the %d queued at revoke", pi, got, m.queuedAtRevoke[pi])
			}
		}
		for _, msg := range m.msgs[pi] {
			switch {
			case msg.state == handled:
			case m.revoked[pi] && (msg.state == dropped || msg.state == refused):
			default:
				m.fatalf("message %d/%d ends in state %d", pi, msg.off, msg.state)
			}
		}
		if n := m.s.Keys(p); n != 0 {
			m.fatalf("partition %d keeps %d key queues at the end", pi, n)
		}
	}
	if m.s.Ready() != 0 {
		m.fatalf("Ready() = %d at the end", m.s.Ready())
	}
}

// maxOps bounds the operations of one run.
const maxOps = 600

// runOps decodes data into a configuration and a sequence of operations and
// runs them against the model.
func runOps(t testing.TB, data []byte) {
	if len(data) < 2 {
		return
	}
	mode := engine.Ordering(data[0] % 3)
	keyless := data[0]&4 != 0
	parts := 1 + int(data[1]%4)
	workers := 1 + int(data[1]>>2%5)
	weak := data[1]&0x80 != 0
	m := newSchedModel(t, mode, keyless, parts, workers, weak)
	keys := [][]byte{nil, {}, []byte("a"), []byte("b"), []byte("cc"), []byte("dd"), []byte("e")}
	data = data[2:min(len(data), 2+maxOps)] // the model is quadratic
	for i := 0; i < len(data); i++ {
		m.ops++
		op := data[i]
		arg := int(op >> 3)
		switch op & 7 {
		case 0, 1, 2, 3:
			k := keys[int(op&3)+arg%4]
			m.deliver(arg%parts, k)
		case 4:
			m.fill(arg % 4)
		case 5:
			if len(m.running) > 0 {
				m.complete(arg % len(m.running))
			}
		case 6:
			if len(m.running) > 0 {
				m.fail(arg%len(m.running), int64(arg%4))
			}
		case 7:
			switch arg % 4 {
			case 0:
				m.revoke(arg/4%parts, arg&0x10 != 0)
			case 1:
				m.advance(int64(arg / 4 % 3))
			default:
				for len(m.running) > 0 {
					m.complete(len(m.running) - 1)
				}
			}
		}
	}
	m.finish()
}

func TestSchedulerAgainstModel(t *testing.T) {
	for _, mode := range []engine.Ordering{engine.Unordered, engine.ByKey, engine.ByPartition} {
		t.Run(fmt.Sprintf("ordering=%v", mode), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(mode), 7))
			for range 300 {
				data := make([]byte, 2+rng.IntN(300))
				for i := range data {
					data[i] = byte(rng.Uint32())
				}
				data[0] = byte(rng.IntN(80))*3 + byte(mode)
				runOps(t, data)
			}
		})
	}
}

func FuzzScheduler(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range 12 {
		data := make([]byte, 2+rng.IntN(200))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		data[0] = byte(i % 6)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { runOps(t, data) })
}

// A partition whose handlers never return holds at most its share of the
// workers while another partition has messages ready: the other one's
// messages all get handled.
func TestSchedulerSlowPartitionDoesNotStarveAnother(t *testing.T) {
	for _, mode := range []engine.Ordering{engine.Unordered, engine.ByKey} {
		t.Run(fmt.Sprintf("ordering=%v", mode), func(t *testing.T) {
			const workers = 4
			m := newSchedModel(t, mode, false, 2, workers, false)
			for i := range 100 { // partition 0: a backlog of slow messages
				m.deliver(0, []byte{byte(i)})
			}
			for i := range 100 { // partition 1, behind it
				m.deliver(1, []byte{byte(i)})
			}
			for range 200 {
				m.fill(0)
				if m.partRun[0] > workers/2 && len(m.queue[1]) > 0 {
					m.fatalf("slow partition holds %d of %d workers while the other has work", m.partRun[0], workers)
				}
				for i := len(m.running) - 1; i >= 0; i-- { // only partition 1 returns
					if m.running[i].Part().TP.Partition == 1 {
						m.complete(i)
					}
				}
			}
			for _, msg := range m.msgs[1] {
				if msg.state != handled {
					m.fatalf("partition 1 message %d starved (state %d)", msg.off, msg.state)
				}
			}
			if m.partRun[0] != workers {
				m.fatalf("slow partition runs %d, want every worker once the other is done", m.partRun[0])
			}
		})
	}
}
